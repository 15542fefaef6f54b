"""The PostgreSQL executor: for teams whose agents run on several machines.

`PostgresExecutor(url)` takes a libpq-style URL (``postgresql://user:pass@host:5432/db``).
The tables live in the connection's current schema (normally ``public``). To keep
several stores in one database, name a schema:

- ``?schema=NAME`` (maestro's own parameter): the schema is created if missing
  and every connection uses ``search_path=NAME``;
- or any libpq setting asyncpg passes through, e.g. ``?options=-csearch_path%3DNAME``
  (then the schema must already exist).

Connections: one *primary* connection runs transactions while it is free and
also carries LISTEN (see `transport`), so an idle server holds exactly one. With
`pool_size` above 1 (``maestro serve --http``, serving many agents), transactions
that find the primary busy borrow from a pool of up to `pool_size - 1` more, which
are closed again after a minute unused. A stdio server (one agent) waits its turn
on the primary instead: its calls are short and nearly never overlap.

Each transaction is shielded from cancellation (committed or rolled back whole)
and retried, with exponential backoff within a deadline, when the connection is
lost before COMMIT (the server rolled it back, so nothing was applied). When it is
lost *during* COMMIT the outcome is unknown: idempotent writes are retried and find
their work done; the others raise `StoreError` rather than risk doing it twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import anyio.abc
import asyncpg
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential

from maestro_mcp.config import redact_url
from maestro_mcp.errors import StoreError
from maestro_mcp.store import schema
from maestro_mcp.store.notify import Notifier, Subscription
from maestro_mcp.store.sql import Query, Statement
from maestro_mcp.store.steps import Lock, Op, Refused, Step, Transaction, Wake, drive_async

from .dialect import POSTGRES
from .transport import Listener, channel_for, listened, payloads, routed

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 60.0
ACQUIRE_TIMEOUT_S = 30.0
RETRY_WINDOW_S = 15.0
IDLE_CLOSE_S = 60.0
HEALTH_CHECK_S = 5.0

SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# The connection is gone: a transaction that did not reach COMMIT was rolled back by the server.
LOST: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InternalClientError,
)
# The server rolled the transaction back and asks us to try again.
TRANSIENT: tuple[type[BaseException], ...] = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
# Retrying will not fix these when opening.
# Worth retrying when opening: the server may be starting, restarting or full.
UNREACHABLE: tuple[type[BaseException], ...] = (*LOST, TimeoutError, asyncpg.TooManyConnectionsError)
PERMANENT_OPEN: tuple[type[BaseException], ...] = (
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
)
_KEY = re.compile(r"Key \(([^)]*)\)")


def lost(exc: BaseException) -> bool:
    if isinstance(exc, LOST):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and ("closed" in str(exc) or "released" in str(exc))


def _retryable(exc: BaseException) -> bool:
    return lost(exc) or isinstance(exc, TRANSIENT)


def _closed(conn: Any) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # the pool took it back because it died
        return True


def split_url(url: str) -> tuple[str, str | None]:
    """The DSN for asyncpg and the schema named by ``?schema=`` (validated), if any."""
    parts = urlsplit(url)
    schema_name: str | None = None
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            schema_name = value
        else:
            rest.append((key, value))
    if schema_name is not None and not SCHEMA_RE.match(schema_name):
        raise StoreError(
            f"{redact_url(url)}: schema={schema_name!r} is not a plain identifier.",
            "Use letters, digits and underscores (at most 63, not starting with a digit).",
        )
    return urlunsplit(parts._replace(query=urlencode(rest))), schema_name


def lock_key(*parts: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock."""
    digest = hashlib.sha256(":".join(("maestro", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _refused(exc: asyncpg.PostgresError) -> Refused:
    """What the database refused, in the words every backend uses."""
    table = getattr(exc, "table_name", None) or ""
    detail = getattr(exc, "detail", None) or str(exc)
    if isinstance(exc, asyncpg.UniqueViolationError):
        key = _KEY.search(detail)
        return Refused("unique", f"{table}.{key[1]}" if key else table, detail)
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return Refused("foreign_key", table, detail)
    return Refused("value", table, str(exc))


def _literal(text: str) -> str:
    """A standard SQL string literal (standard_conforming_strings is on by default since PostgreSQL 9.1)."""
    return "'" + text.replace("'", "''") + "'"


FaultHook = Callable[[str, Any], Awaitable[None]]


class PostgresExecutor:
    """Runs transactions of steps on a PostgreSQL database; wakes other processes with NOTIFY."""

    dialect = POSTGRES

    def __init__(self, url: str, *, open_timeout_s: float = 30.0, pool_size: int = 1) -> None:
        self.url = url
        self.location = redact_url(url)
        self.dsn, self.schema_param = split_url(url)
        self.open_timeout_s = open_timeout_s
        self.pool_size = max(1, pool_size)
        self.schema = ""
        self.channel = ""
        self.origin = secrets.token_hex(6)
        self.notifier = Notifier(None)
        self.listener: Listener | None = None
        self.fault_hook: FaultHook | None = None
        """Tests only: awaited with ("before_commit" | "after_commit", connection) in every write."""
        self._primary: Any = None
        # fast_acquire: an uncontended acquire does not yield to the event loop (two loop turns a call saved).
        self._primary_lock = anyio.Lock(fast_acquire=True)
        self._pool: Any = None
        self._open = False
        self._dropped = anyio.Event()

    # -- connections ------------------------------------------------------------------------------------
    def _server_settings(self) -> dict[str, str]:
        # Visible in pg_stat_activity; the origin tells one store object's connections from another's.
        settings = {"application_name": f"maestro {self.origin}"}
        if self.schema_param is not None:
            settings["search_path"] = self.schema_param
        return settings

    async def _connect(self) -> Any:
        return await asyncpg.connect(
            self.dsn,
            server_settings=self._server_settings(),
            timeout=CONNECT_TIMEOUT_S,
            command_timeout=COMMAND_TIMEOUT_S,
        )

    async def _primary_connection(self) -> Any:
        """The primary connection (the caller holds its lock), connected again if it was lost."""
        if self._primary is not None and not _closed(self._primary):
            return self._primary
        if self._primary is not None:
            self._primary.terminate()
            self._primary = None
            if self.listener is not None:
                self.listener.detached()
        conn = await self._connect()
        conn.add_termination_listener(lambda _conn: self._dropped.set())
        if self.listener is not None:
            await self.listener.attach(conn)
        self._primary = conn
        return conn

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        if not self._open:
            raise StoreError("The store is closed.")
        if self._primary_lock.locked() and self._pool is not None:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                yield conn
            return
        async with self._primary_lock:
            yield await self._primary_connection()

    # -- opening ----------------------------------------------------------------------------------------
    async def open(self) -> None:
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_delay(self.open_timeout_s),
                wait=wait_exponential(multiplier=0.2, max=5.0),
                retry=retry_if_exception(lambda exc: isinstance(exc, UNREACHABLE)),
                before_sleep=lambda state: log.warning(
                    "PostgreSQL store %s unreachable (%s); retrying",
                    self.location,
                    state.outcome and state.outcome.exception(),
                ),
                reraise=True,
            ):
                with attempt:
                    await self._primary_connection()
        except PERMANENT_OPEN as exc:
            raise StoreError(
                f"Cannot open the PostgreSQL store {self.location}: {exc}.",
                "Check the user, password and database name in MAESTRO_DB.",
            ) from exc
        except UNREACHABLE as exc:
            raise StoreError(
                f"Cannot reach the PostgreSQL store {self.location} after {self.open_timeout_s:.0f} s"
                f" of retrying: {exc or type(exc).__name__}.",
                "Check that the server is running and reachable from here, and the URL in MAESTRO_DB.",
            ) from exc
        except asyncpg.PostgresError as exc:
            raise StoreError(f"Cannot open the PostgreSQL store {self.location}: {exc}.") from exc
        self._open = True
        try:
            self.schema = self.schema_param or await self._primary.fetchval("SELECT current_schema()") or ""
            if not self.schema:
                raise StoreError(
                    f"{self.location}: the search_path names no existing schema.",
                    "Create the schema first, or use ?schema=NAME to have maestro create it.",
                )
            await self.write(self._migrate)
            if self.pool_size > 1:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=0,
                    max_size=self.pool_size - 1,
                    command_timeout=COMMAND_TIMEOUT_S,
                    max_inactive_connection_lifetime=IDLE_CLOSE_S,
                    server_settings=self._server_settings(),
                    timeout=CONNECT_TIMEOUT_S,
                )
        except BaseException:
            await self.close()
            raise
        self.channel = channel_for(self.schema)

    def _migrate(self) -> Step[int]:
        yield Lock("migrate")
        if self.schema_param is not None:
            yield Statement(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"').run()
        return (yield from schema.migrate(self.location))

    async def close(self) -> None:
        self._open = False
        self.notifier.close()
        pool, self._pool = self._pool, None
        primary, self._primary = self._primary, None
        with anyio.CancelScope(shield=True):
            if primary is not None:
                with anyio.move_on_after(5) as scope:
                    await primary.close()
                if scope.cancelled_caught:
                    primary.terminate()
            if pool is not None:
                with anyio.move_on_after(10) as scope:
                    await pool.close()
                if scope.cancelled_caught:
                    pool.terminate()

    # -- transactions -----------------------------------------------------------------------------------
    async def _run(self, conn: Any, op: Op, wakes: list[str]) -> Any:
        if isinstance(op, Query):
            rendered = self.dialect.render(op.statement)
            args = self.dialect.args(rendered, op.params)
            try:
                if op.fetch == "all":
                    return await conn.fetch(rendered.sql, *args)
                if op.fetch == "one":
                    return await conn.fetchrow(rendered.sql, *args)
                if op.fetch == "value":
                    return await conn.fetchval(rendered.sql, *args)
                status = await conn.execute(rendered.sql, *args)
            except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
                raise _refused(exc) from exc
            return int(status.rsplit(" ", 1)[-1]) if op.fetch == "count" else None
        if isinstance(op, Wake):
            wakes.extend(op.topics)
        elif isinstance(op, Lock):
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(op.name, self.schema))
        else:
            raise TypeError(f"not a step operation: {op!r}")
        return None

    async def _commit(self, conn: Any, wakes: list[str]) -> None:
        """COMMIT, then NOTIFY what the transaction woke, in one round trip (a simple-protocol script).

        The notifications run after the COMMIT, in a transaction of their own that writes nothing: a
        transaction that notifies holds PostgreSQL's notify lock until it has committed, and a commit
        that writes waits for its WAL flush, so notifying inside the writing transaction would make
        every notifying writer of the database queue behind one flush at a time. They are sent only if
        the COMMIT succeeded (an error ends the script); a process killed between the two loses the
        wake-up, which the waiters' safety-net poll covers."""
        script = ["COMMIT;"]
        for channel, topics in routed(self.schema, wakes).items():
            for payload in payloads(self.origin, topics):
                if "$wake$" in payload or "$wake$" in channel:  # not from our topics; stay safe anyway
                    script.append(f"SELECT pg_notify({_literal(channel)}, {_literal(payload)});")
                else:
                    script.append(f"SELECT pg_notify($wake${channel}$wake$, $wake${payload}$wake$);")
        await conn.execute("".join(script))

    async def _write_once(self, tx: Transaction[T], idempotent: bool) -> tuple[T, list[str]]:
        committing = False
        async with self._connection() as conn:
            try:
                wakes: list[str] = []
                await conn.execute("BEGIN")
                try:
                    result = await drive_async(tx(), lambda op: self._run(conn, op, wakes))
                    if self.fault_hook is not None:
                        await self.fault_hook("before_commit", conn)
                    if _closed(conn):
                        raise asyncpg.ConnectionDoesNotExistError("connection lost before COMMIT")
                    committing = True
                    await self._commit(conn, wakes)
                except BaseException:
                    if not _closed(conn) and conn.is_in_transaction():
                        with contextlib.suppress(*LOST, asyncpg.InterfaceError, asyncpg.PostgresError):
                            await conn.execute("ROLLBACK")
                    raise
                if self.fault_hook is not None:
                    await self.fault_hook("after_commit", conn)
            except asyncpg.InternalClientError:
                conn.terminate()  # its protocol state is unknown: never hand it out again
                raise
            except TimeoutError as exc:
                raise StoreError(
                    f"{self.location} did not answer within {COMMAND_TIMEOUT_S:.0f} s"
                    + (" while committing; the change may or may not have been saved." if committing else "."),
                    "Check the server's load and locks (pg_stat_activity).",
                ) from exc
            except Exception as exc:
                if committing and lost(exc) and not idempotent:
                    raise StoreError(
                        f"The connection to {self.location} was lost while committing; the change may or"
                        " may not have been saved.",
                        "Check the current state (task_get, mail_thread) before trying again.",
                    ) from exc
                raise
        return result, wakes

    async def _read_once(self, tx: Transaction[T], snapshot: bool) -> T:
        wakes: list[str] = []
        async with self._connection() as conn:
            try:
                if not snapshot:
                    return await drive_async(tx(), lambda op: self._run(conn, op, wakes))
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    return await drive_async(tx(), lambda op: self._run(conn, op, wakes))
            except asyncpg.InternalClientError:
                conn.terminate()
                raise
            except TimeoutError as exc:
                raise StoreError(
                    f"{self.location} did not answer within {COMMAND_TIMEOUT_S:.0f} s.",
                    "Check the server's load and locks (pg_stat_activity).",
                ) from exc

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        try:
            return await attempt()  # nearly always enough: retrying starts at the first lost connection
        except Exception as exc:
            if not _retryable(exc):
                raise
            log.info("transaction on %s retried after %s", self.location, exc)
        try:
            async for retry in AsyncRetrying(
                stop=stop_after_delay(RETRY_WINDOW_S),
                wait=wait_exponential(multiplier=0.05, max=1.0),
                retry=retry_if_exception(_retryable),
                before_sleep=lambda state: log.info(
                    "transaction on %s retried after %s", self.location, state.outcome and state.outcome.exception()
                ),
                reraise=True,
            ):
                with retry:
                    return await attempt()
        except Exception as exc:
            if not _retryable(exc):
                raise
            raise StoreError(
                f"Lost the connection to {self.location} and could not get it back: {exc}.",
                "Check that the PostgreSQL server is up; nothing of this call was saved.",
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def write(self, tx: Transaction[T], *, idempotent: bool = False) -> T:
        with anyio.CancelScope(shield=True), self._failures():  # once started, committed or rolled back whole
            result, wakes = await self._retrying(lambda: self._write_once(tx, idempotent))
        if wakes:
            self.notifier.publish(wakes)
        return result

    async def read(self, tx: Transaction[T], *, snapshot: bool = False) -> T:
        with self._failures():
            return await self._retrying(lambda: self._read_once(tx, snapshot))

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """The server's own troubles (its disk full, a damaged table) in words a model can act on."""
        try:
            yield
        except asyncpg.DiskFullError as exc:
            raise StoreError(
                f"The disk of the PostgreSQL server of {self.location} is full: nothing of this call was saved.",
                "Free space on the database server's disk, then try again; what was stored before is intact.",
            ) from exc
        except (asyncpg.DataCorruptedError, asyncpg.IndexCorruptedError) as exc:
            raise StoreError(
                f"The PostgreSQL store {self.location} is damaged ({exc}).",
                "Ask its administrator to check the server (REINDEX for an index, a backup for data).",
            ) from exc
        except asyncpg.InsufficientResourcesError as exc:
            raise StoreError(
                f"The PostgreSQL server of {self.location} is out of resources ({exc}).", "Try again shortly."
            ) from exc

    # -- wake-ups ---------------------------------------------------------------------------------------
    def subscribe(self, topic: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        return self.notifier.subscribe(topic)

    async def wake(self, topics: Sequence[str]) -> None:
        def ring() -> Step[None]:
            yield Wake(tuple(topics))

        await self.write(ring, idempotent=True)

    async def listen(self, owner: str, task_group: anyio.abc.TaskGroup) -> None:
        """LISTEN on the primary connection (once per store object) and keep it alive: on the channels
        that concern `owner` (see `transport`)."""
        if self.listener is not None:
            return
        self.listener = Listener(listened(self.schema, owner), self.notifier.hub, self.origin)
        async with self._primary_lock:
            if self._primary is not None and not _closed(self._primary):
                await self.listener.attach(self._primary)
        task_group.start_soon(self._keep_listening)

    async def _keep_listening(self) -> None:
        """Notice a dead primary connection at once (or a silent one by a health query when idle) and
        connect again with backoff: the listener is attached to each new one."""
        backoff = 0.0
        while True:
            with anyio.move_on_after(backoff or HEALTH_CHECK_S):
                await self._dropped.wait()
            if self._dropped.is_set():
                self._dropped = anyio.Event()
                self.notifier.hub.ring_all()  # whatever was sent meanwhile is lost: waiters look again
            elif self._primary_lock.locked():
                continue  # in use, so alive; a dead one fails its transaction, which reconnects
            try:
                async with self._primary_lock:
                    conn = await self._primary_connection()
                    with anyio.fail_after(HEALTH_CHECK_S):
                        await conn.fetchval("SELECT 1")
                backoff = 0.0
            except Exception as exc:  # never let the listener take its server down: reconnect instead
                log.warning("listener for %s lost its connection (%r); reconnecting", self.location, exc)
                if self._primary is not None:
                    self._primary.terminate()
                backoff = min(max(backoff * 2, 0.05), 5.0)

    # -- health -----------------------------------------------------------------------------------------
    async def health(self) -> dict[str, str]:
        def check() -> Step[dict[str, str]]:
            version = yield Statement("SHOW server_version").value()
            found = yield Statement(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            ).all()
            missing = sorted(set(schema.TABLES) - {r["table_name"] for r in found})
            return {
                "backend": f"postgresql {version}",
                "integrity": "ok" if not missing else f"missing tables: {', '.join(missing)}",
                "schema": self.schema,
                "notifier": f"LISTEN/NOTIFY on channels {self.channel}[.<session>]",
                "notifier_fix": "Check that NOTIFY reaches this server (no PgBouncer in transaction mode).",
                "listener": self.listener.state() if self.listener else "not started in this process",
                "connections": f"1 primary, up to {self.pool_size - 1} more from a pool",
            }

        return await self.read(check, snapshot=True)
