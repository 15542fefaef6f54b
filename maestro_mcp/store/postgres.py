"""The PostgreSQL backend: for teams whose agents run on several machines.

`PostgresStore(url)` takes a libpq-style URL (``postgresql://user:pass@host:5432/db``).
The tables live in the connection's current schema (normally ``public``). To keep
several stores in one database, name a schema:

- ``?schema=NAME`` (maestro's own parameter): the schema is created if missing
  and every connection uses ``search_path=NAME``;
- or any libpq setting asyncpg passes through, e.g. ``?options=-csearch_path%3DNAME``
  (then the schema must already exist).

Each store method is one transaction on a pooled connection (asyncpg). Invariants
are conditional updates, as on SQLite: receipts change only from the status they
are expected to have, `take_unread` locks what it takes (FOR UPDATE SKIP LOCKED)
so two takers never share a message, and claims are serialised by a transaction
advisory lock so that file-ownership checks see every committed claim.

Writes are shielded from cancellation (committed or rolled back whole, as on
SQLite) and retried when the connection is lost before COMMIT (the server
rolled the transaction back, so nothing was applied). When the connection is
lost *during* COMMIT the outcome is unknown: writes that are idempotent (keyed
by a client-made id, or setting absolute values) are retried and find their
work done; the others raise `StoreError` rather than risk doing it twice.

Wake-ups: see `postgres_notify`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import anyio.abc
import asyncpg

from maestro_mcp.config import pg_open_timeout_s, redact_url
from maestro_mcp.errors import Conflict, NotFound, SchemaTooNew, StoreError
from maestro_mcp.models import (
    Role,
    SessionRecord,
    SessionStatus,
    now,
)

from . import rows as rows_
from .base import TABLES
from .notify import Hub, Subscription
from .postgres_base import Tx
from .postgres_mail import PostgresMail, count
from .postgres_notify import PgListener, channel_for
from .postgres_schema import MIGRATIONS
from .postgres_snapshot import PostgresSnapshots
from .postgres_tasks import PostgresTasks

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 60.0
ACQUIRE_TIMEOUT_S = 30.0
RETRY_WINDOW_S = 15.0
POOL_MAX = 10

SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Errors that mean "the connection is gone", after which a transaction that did not reach COMMIT
# was rolled back by the server and may be run again.
_LOST: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InternalClientError,
)
# Errors after which the server rolled the transaction back and asks us to try again.
_TRANSIENT: tuple[type[BaseException], ...] = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
# Errors that retrying will not fix when opening.
_PERMANENT_OPEN: tuple[type[BaseException], ...] = (
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
)


def _lost(exc: BaseException) -> bool:
    if isinstance(exc, _LOST):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and ("closed" in str(exc) or "released" in str(exc))


def _closed(conn: Any) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # the pool took it back because it died
        return True


def _discard(conn: Any) -> None:
    """A connection whose protocol state is unknown (a FATAL from a killed backend arrived mid-call):
    close it so the pool replaces it instead of handing it out again."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


def split_url(url: str) -> tuple[str, str | None]:
    """The DSN for asyncpg and the schema named by ``?schema=`` (validated), if any."""
    parts = urlsplit(url)
    schema: str | None = None
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            schema = value
        else:
            rest.append((key, value))
    if schema is not None and not SCHEMA_RE.match(schema):
        raise StoreError(
            f"{redact_url(url)}: schema={schema!r} is not a plain identifier.",
            "Use letters, digits and underscores (at most 63, not starting with a digit).",
        )
    return urlunsplit(parts._replace(query=urlencode(rest))), schema


def lock_key(*parts: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock."""
    digest = hashlib.sha256(":".join(("maestro", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


_session = rows_.session
_SESSION_VALUES = ",".join(f"${i}" for i in range(1, len(rows_.SESSION_COLUMNS) + 1))


FaultHook = Callable[[str, Any], Awaitable[None]]


class PostgresStore(PostgresMail, PostgresTasks, PostgresSnapshots):
    """`Store` on a PostgreSQL database (asyncpg pool + one LISTEN connection)."""

    def __init__(self, url: str, *, open_timeout_s: float | None = None, pool_max: int = POOL_MAX) -> None:
        self.url = url
        self.location = redact_url(url)
        self.dsn, self.schema_param = split_url(url)
        self.open_timeout_s = pg_open_timeout_s() if open_timeout_s is None else open_timeout_s
        self.pool_max = pool_max
        self.schema = ""
        self.channel = ""
        self.hub = Hub()
        self.origin = secrets.token_hex(6)
        self.listener: PgListener | None = None
        self.fault_hook: FaultHook | None = None
        """Tests only: awaited with ("before_commit" | "after_commit", connection) in every write."""
        self._pool: Any = None
        self._claim_key = 0

    # -- plumbing -------------------------------------------------------------
    def _server_settings(self) -> dict[str, str]:
        # Visible in pg_stat_activity; the origin tells one store object's connections from another's.
        settings = {"application_name": f"maestro {self.origin}"}
        if self.schema_param is not None:
            settings["search_path"] = self.schema_param
        return settings

    async def _connect(self) -> Any:
        return await asyncpg.connect(self.dsn, server_settings=self._server_settings(), timeout=CONNECT_TIMEOUT_S)

    async def open(self) -> None:
        deadline = time.monotonic() + self.open_timeout_s
        backoff = 0.2
        while True:
            try:
                left = max(deadline - time.monotonic(), 0.5)
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=1,
                    max_size=self.pool_max,
                    command_timeout=COMMAND_TIMEOUT_S,
                    max_inactive_connection_lifetime=300.0,
                    server_settings=self._server_settings(),
                    timeout=min(CONNECT_TIMEOUT_S, left),
                )
                break
            except _PERMANENT_OPEN as exc:
                raise StoreError(
                    f"Cannot open the PostgreSQL store {self.location}: {exc}.",
                    "Check the user, password and database name in MAESTRO_DB.",
                ) from exc
            except (*_LOST, TimeoutError, asyncpg.TooManyConnectionsError) as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreError(
                        f"Cannot reach the PostgreSQL store {self.location} after {self.open_timeout_s:.0f} s"
                        f" of retrying: {exc or type(exc).__name__}.",
                        "Check that the server is running and reachable from here, and the URL in MAESTRO_DB.",
                    ) from exc
                log.log(
                    logging.WARNING if backoff <= 0.2 else logging.INFO,
                    "PostgreSQL store %s unreachable (%s); retrying for up to %.0f s",
                    self.location,
                    exc,
                    left,
                )
                await anyio.sleep(min(backoff, left))
                backoff = min(backoff * 2, 5.0)
            except asyncpg.PostgresError as exc:
                raise StoreError(f"Cannot open the PostgreSQL store {self.location}: {exc}.") from exc
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise
        self.channel = channel_for(self.schema)
        self._claim_key = lock_key("claim", self.schema)

    async def _migrate(self) -> None:
        """Create or upgrade the schema under an advisory lock, so racing processes take turns."""
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
            schema = self.schema_param or await conn.fetchval("SELECT current_schema()")
            if schema is None:
                raise StoreError(
                    f"{self.location}: the search_path names no existing schema.",
                    "Create the schema first, or use ?schema=NAME to have maestro create it.",
                )
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key("migrate", schema))
            if self.schema_param is not None:
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            current = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
            latest = MIGRATIONS[-1][0]
            if current > latest:
                raise SchemaTooNew(
                    f"The store {self.location} has schema version {current}, newer than this maestro knows"
                    f" ({latest}).",
                    "Upgrade maestro (pip install -U maestro-coord-mcp) to use this store.",
                )
            for version, script in MIGRATIONS:
                if version > current:
                    await conn.execute(script)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", version, now()
                    )
            self.schema = schema

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10) as scope:
                await pool.close()
            if scope.cancelled_caught:
                pool.terminate()

    def _require_pool(self) -> Any:
        if self._pool is None:
            raise StoreError("The store is closed.")
        return self._pool

    async def _write(self, fn: Callable[[Tx], Awaitable[T]], *, idempotent: bool = False) -> T:
        """Run `fn` as one transaction; ring local subscriptions after the commit.

        Shielded: once started, a write is committed or rolled back whole, never abandoned.
        """
        pool = self._require_pool()
        deadline = time.monotonic() + RETRY_WINDOW_S
        backoff = 0.05
        with anyio.CancelScope(shield=True):
            while True:
                committing = False
                try:
                    async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                        try:
                            tx = Tx(conn, self.channel, self.origin)
                            transaction = conn.transaction()
                            await transaction.start()
                            try:
                                result = await fn(tx)
                                if self.fault_hook is not None:
                                    await self.fault_hook("before_commit", conn)
                            except BaseException:
                                if not _closed(conn):
                                    with contextlib.suppress(*_LOST, asyncpg.InterfaceError):
                                        await transaction.rollback()
                                raise
                            if _closed(conn):
                                raise asyncpg.ConnectionDoesNotExistError("connection lost before COMMIT")
                            committing = True
                            await transaction.commit()
                            if self.fault_hook is not None:
                                await self.fault_hook("after_commit", conn)
                        except asyncpg.InternalClientError:
                            _discard(conn)
                            raise
                except Exception as exc:
                    if isinstance(exc, TimeoutError):
                        raise StoreError(
                            f"{self.location} did not answer within {COMMAND_TIMEOUT_S:.0f} s"
                            + (" while committing; the change may or may not have been saved." if committing else "."),
                            "Check the server's load and locks (pg_stat_activity).",
                        ) from exc
                    if not (_lost(exc) or isinstance(exc, _TRANSIENT)):
                        raise
                    if committing and not idempotent:
                        raise StoreError(
                            f"The connection to {self.location} was lost while committing; the change may or"
                            " may not have been saved.",
                            "Check the current state (task_get, mail_thread) before trying again.",
                        ) from exc
                    if time.monotonic() + backoff > deadline:
                        raise StoreError(
                            f"Lost the connection to {self.location} and could not get it back: {exc}.",
                            "Check that the PostgreSQL server is up; nothing of this call was saved.",
                        ) from exc
                    log.info("write to %s retried after %s", self.location, exc)
                    await anyio.sleep(backoff)
                    backoff = min(backoff * 2, 1.0)
                    continue
                self.hub.ring(tx.topics)
                return result
        raise AssertionError("unreachable: a shield scope has no deadline to swallow")

    async def _read(self, fn: Callable[[Any], Awaitable[T]], *, snapshot: bool = False) -> T:
        """Run `fn` on a pooled connection (in one read-only snapshot when it reads several times)."""
        pool = self._require_pool()
        deadline = time.monotonic() + RETRY_WINDOW_S
        backoff = 0.05
        while True:
            try:
                async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                    try:
                        if not snapshot:
                            return await fn(conn)
                        async with conn.transaction(isolation="repeatable_read", readonly=True):
                            return await fn(conn)
                    except asyncpg.InternalClientError:
                        _discard(conn)
                        raise
            except Exception as exc:
                if isinstance(exc, TimeoutError):
                    raise StoreError(
                        f"{self.location} did not answer within {COMMAND_TIMEOUT_S:.0f} s.",
                        "Check the server's load and locks (pg_stat_activity).",
                    ) from exc
                if not _lost(exc):
                    raise
                if time.monotonic() + backoff > deadline:
                    raise StoreError(
                        f"Lost the connection to {self.location} and could not get it back: {exc}.",
                        "Check that the PostgreSQL server is up.",
                    ) from exc
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    async def schema_version(self) -> int:
        return int(await self._read(lambda c: c.fetchval("SELECT MAX(version) FROM schema_migrations")))

    async def health(self) -> dict[str, str]:
        async def check(conn: Any) -> dict[str, str]:
            version = await conn.fetchval("SHOW server_version")
            found = {
                r["table_name"]
                for r in await conn.fetch(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                )
            }
            missing = sorted(set(TABLES) - found)
            return {
                "backend": f"postgresql {version}",
                "integrity": "ok" if not missing else f"missing tables: {', '.join(missing)}",
                "schema": self.schema,
                "channel": self.channel,
                "listener": self._listener_state(),
            }

        return await self._read(check)

    def _listener_state(self) -> str:
        if self.listener is None:
            return "not started in this process"
        if self.listener.backend_pid is None:
            return "reconnecting"
        return f"listening (backend pid {self.listener.backend_pid}, {self.listener.generation} connection(s))"

    # -- wake-ups -------------------------------------------------------------
    def subscribe(self, topic: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        return self.hub.subscribe(topic)

    async def wake(self, topics: Sequence[str]) -> None:
        async def notify(tx: Tx) -> None:
            await tx.notify(list(topics))

        await self._write(notify, idempotent=True)

    async def listen(self, owner: str, task_group: anyio.abc.TaskGroup) -> None:
        """Start the LISTEN connection (once per store object). Every topic on the channel is heard:
        the hub rings only what is subscribed, so `owner` needs no filtering here."""
        if self.listener is None:
            self._require_pool()
            self.listener = PgListener(self._connect, self.channel, self.hub, self.origin, self.location)
            await task_group.start(self.listener.run)

    # -- sessions -------------------------------------------------------------
    async def create_session(self, record: SessionRecord) -> SessionRecord:
        async def insert(tx: Tx) -> None:
            try:
                # ON CONFLICT (id): a retry after a lost COMMIT finds its own row and does nothing.
                await tx.conn.execute(
                    f"INSERT INTO sessions ({', '.join(rows_.SESSION_COLUMNS)}) VALUES ({_SESSION_VALUES})"
                    " ON CONFLICT (id) DO NOTHING",
                    *rows_.session_params(record),
                )
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == "sessions_name_key":
                    raise Conflict(
                        f"The session name {record.name!r} is taken.",
                        "Choose another name, or leave it out to get a generated one.",
                    ) from exc
                raise
            await tx.notify(["sessions"])

        await self._write(insert, idempotent=True)
        return record

    async def get_session(self, key: str) -> SessionRecord | None:
        row = await self._read(
            lambda c: c.fetchrow(
                "SELECT * FROM sessions WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1", key
            )
        )
        return _session(row) if row else None

    async def session_by_token_hash(self, token_hash: str) -> SessionRecord | None:
        row = await self._read(lambda c: c.fetchrow("SELECT * FROM sessions WHERE token_hash = $1", token_hash))
        return _session(row) if row else None

    async def set_token_hash(self, session_id: str, token_hash: str | None) -> bool:
        async def update(tx: Tx) -> bool:
            status = await tx.conn.execute("UPDATE sessions SET token_hash = $1 WHERE id = $2", token_hash, session_id)
            return count(status) == 1

        return await self._write(update, idempotent=True)

    async def list_sessions(
        self,
        *,
        role: Role | None = None,
        status: SessionStatus | None = None,
        parent_id: str | None = None,
        live: bool | None = None,
    ) -> list[SessionRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("role", role.value if role else None),
            ("status", status.value if status else None),
            ("parent_id", parent_id),
        ):
            if value is not None:
                params.append(value)
                clauses.append(f"{column} = ${len(params)}")
        if live is not None:
            clauses.append("ended_at IS NULL" if live else "ended_at IS NOT NULL")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM sessions {where} ORDER BY created_at, id"
        rows = await self._read(lambda c: c.fetch(sql, *params))
        return [_session(r) for r in rows]

    async def set_session_status(self, session_id: str, status: SessionStatus) -> SessionRecord | None:
        async def update(tx: Tx) -> SessionRecord | None:
            row = await tx.conn.fetchrow(
                "UPDATE sessions SET status = $1, last_seen_at = $2 WHERE id = $3 AND ended_at IS NULL RETURNING *",
                status.value,
                now(),
                session_id,
            )
            await tx.notify(["sessions"])
            return _session(row) if row else None

        return await self._write(update, idempotent=True)

    async def touch_session(self, session_id: str, pid: int | None = None) -> None:
        async def touch(tx: Tx) -> None:
            await tx.conn.execute(
                "UPDATE sessions SET last_seen_at = $1, pid = COALESCE($2, pid) WHERE id = $3", now(), pid, session_id
            )

        await self._write(touch, idempotent=True)

    async def set_process(self, session_id: str, pid: int, spawner_pid: int | None, log_path: str | None) -> None:
        async def update(tx: Tx) -> None:
            await tx.conn.execute(
                "UPDATE sessions SET pid = $1, spawner_pid = $2, log_path = $3 WHERE id = $4",
                pid,
                spawner_pid,
                log_path,
                session_id,
            )

        await self._write(update, idempotent=True)

    async def set_exit_code(self, session_id: str, exit_code: int, status: SessionStatus) -> None:
        async def update(tx: Tx) -> None:
            await tx.conn.execute(
                "UPDATE sessions SET exit_code = $1, status = $2 WHERE id = $3 AND ended_at IS NOT NULL",
                exit_code,
                status.value,
                session_id,
            )
            await tx.notify(["sessions"])

        await self._write(update, idempotent=True)

    async def revive_session(self, session_id: str, status: SessionStatus, pid: int | None) -> SessionRecord:
        async def revive(tx: Tx) -> SessionRecord:
            row = await tx.conn.fetchrow(
                "UPDATE sessions SET status = $1, pid = $2, ended_at = NULL, exit_code = NULL, last_seen_at = $3"
                " WHERE id = $4 RETURNING *",
                status.value,
                pid,
                now(),
                session_id,
            )
            if row is None:
                raise NotFound(f"No session {session_id!r}.")
            await tx.notify(["sessions"])
            return _session(row)

        return await self._write(revive, idempotent=True)

    async def end_session(self, session_id: str, status: SessionStatus, exit_code: int | None) -> SessionRecord | None:
        async def end(tx: Tx) -> SessionRecord | None:
            ts = now()
            row = await tx.conn.fetchrow(
                "UPDATE sessions SET status = $1, exit_code = $2, ended_at = $3, last_seen_at = $3"
                " WHERE id = $4 AND ended_at IS NULL RETURNING *",
                status.value,
                exit_code,
                ts,
                session_id,
            )
            if row is None:
                return None
            await tx.notify(["sessions"])
            return _session(row)

        return await self._write(end)
