"""The SQLite backend: one file per project, WAL, one write connection per process.

Why stdlib `sqlite3` on worker threads rather than aiosqlite: a store
method is one transaction of several statements, and aiosqlite pays one
thread hop per statement and per fetch. Here each method is one plain
function run on its connection's own thread (one hop; see `worker.py`), which
also serialises the connection. Cancellation waits for the thread, so a
transaction is always committed or rolled back whole, never abandoned half-way.

Writes use `BEGIN IMMEDIATE`, so a writer takes the database lock before it
reads what it will change: two processes can never both win a conditional
update (a receipt, a claim). Readers use a second, query-only connection and
never block writers (WAL).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.to_thread

from maestro_mcp.errors import Conflict, Forbidden, NotFound, SchemaTooNew, StoreError
from maestro_mcp.models import (
    Message,
    NewMessage,
    Priority,
    Role,
    SessionRecord,
    SessionStatus,
    ThreadMessage,
    Unread,
    now,
)

from . import rows as rows_
from .notify import RECEIPTS, Notifier, SocketTransport, Subscription, mail_topic, socket_dir_for
from .sqlite_admin import SQLiteAdmin, _receipts
from .sqlite_schema import MIGRATIONS
from .sqlite_tasks import SQLiteTasks
from .worker import ConnectionThread

T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0

_MESSAGE_COLUMNS = rows_.MESSAGE_COLUMNS
_MESSAGE_FROM = rows_.MESSAGE_FROM


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


_message = rows_.message


_session = rows_.session


def _connect(path: str, *, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    else:
        # NORMAL in WAL mode survives a killed process; only power loss can drop the newest commits.
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date inside one IMMEDIATE transaction, so racing processes take turns."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        current = int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0])
        latest = MIGRATIONS[-1][0]
        if current > latest:
            raise SchemaTooNew(
                f"The store has schema version {current}, newer than this maestro knows ({latest}).",
                "Upgrade maestro (pip install -U maestro-coord-mcp) to use this store.",
            )
        for version, script in MIGRATIONS:
            if version <= current:
                continue
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", (version, now()))
        conn.execute("COMMIT")
        return max(current, latest)
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class SQLiteStore(SQLiteAdmin, SQLiteTasks):
    """`Store` on one SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = str(Path(path))
        self.location = self.path
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        # One thread per connection: a store method is one cheap hop, and each connection runs one at a time.
        self._write_thread = ConnectionThread("maestro-sqlite-write", lock_path=f"{self.path}-lock")
        self._read_thread = ConnectionThread("maestro-sqlite-read")
        self.notifier = Notifier(SocketTransport(socket_dir_for(self.path)))

    # -- plumbing -------------------------------------------------------------
    async def open(self) -> None:
        await anyio.to_thread.run_sync(self._open_sync)

    def _open_sync(self) -> None:
        target = Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            writer = _connect(self.path, readonly=False)
            mode = writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"Could not switch {self.path} to WAL mode (got {mode!r}).")
            _migrate(writer)
            reader = _connect(self.path, readonly=True)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not a usable maestro store: {exc}.",
                "Restore it from a `maestro export` snapshot, or move it aside and run `maestro init`.",
            ) from exc
        self._writer, self._reader = writer, reader

    async def close(self) -> None:
        self.notifier.close()
        await self._write_thread.close()
        await self._read_thread.close()
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer = self._reader = None

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` as one IMMEDIATE transaction on the write connection."""
        conn = self._writer
        if conn is None:
            raise StoreError("The store is closed.")

        def tx() -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._write_thread.run(tx)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self._reader
        if conn is None:
            raise StoreError("The store is closed.")

        def tx() -> T:
            conn.execute("BEGIN")
            try:
                return fn(conn, *args)
            finally:
                conn.execute("COMMIT")

        return await self._read_thread.run(tx)

    async def schema_version(self) -> int:
        return int(await self._read(lambda c: c.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]))

    async def health(self) -> dict[str, str]:
        def check(conn: sqlite3.Connection) -> dict[str, str]:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
            return {
                "backend": f"sqlite {sqlite3.sqlite_version}",
                "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
                "integrity": "ok" if problems == ["ok"] else "; ".join(problems[:5]),
                "sockets": str(socket_dir_for(self.path)),
            }

        return await self._read(check)

    def subscribe(self, topic: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        return self.notifier.subscribe(topic)

    async def wake(self, topics: Sequence[str]) -> None:
        self.notifier.publish(topics)

    async def listen(self, owner: str, task_group: anyio.abc.TaskGroup) -> None:
        await self.notifier.listen(owner, task_group)

    # -- sessions -------------------------------------------------------------
    async def create_session(self, record: SessionRecord) -> SessionRecord:
        def insert(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO sessions ({', '.join(rows_.SESSION_COLUMNS)})"
                    f" VALUES ({_placeholders(len(rows_.SESSION_COLUMNS))})",
                    rows_.session_params(record),
                )
            except sqlite3.IntegrityError as exc:
                if "sessions.name" in str(exc):
                    raise Conflict(
                        f"The session name {record.name!r} is taken.",
                        "Choose another name, or leave it out to get a generated one.",
                    ) from exc
                raise

        await self._write(insert)
        self.notifier.publish(["sessions"])
        return record

    async def get_session(self, key: str) -> SessionRecord | None:
        def get(conn: sqlite3.Connection) -> SessionRecord | None:
            row = conn.execute(
                "SELECT * FROM sessions WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1",
                (key, key, key),
            ).fetchone()
            return _session(row) if row else None

        return await self._read(get)

    async def session_by_token_hash(self, token_hash: str) -> SessionRecord | None:
        def get(conn: sqlite3.Connection) -> SessionRecord | None:
            row = conn.execute("SELECT * FROM sessions WHERE token_hash = ?", (token_hash,)).fetchone()
            return _session(row) if row else None

        return await self._read(get)

    async def set_token_hash(self, session_id: str, token_hash: str | None) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("UPDATE sessions SET token_hash = ? WHERE id = ?", (token_hash, session_id))
            return cur.rowcount == 1

        return await self._write(update)

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
        if role is not None:
            clauses.append("role = ?")
            params.append(role.value)
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        if parent_id is not None:
            clauses.append("parent_id = ?")
            params.append(parent_id)
        if live is not None:
            clauses.append("ended_at IS NULL" if live else "ended_at IS NOT NULL")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM sessions {where} ORDER BY created_at, id"
        return await self._read(lambda c: [_session(r) for r in c.execute(sql, params).fetchall()])

    async def set_session_status(self, session_id: str, status: SessionStatus) -> SessionRecord | None:
        def update(conn: sqlite3.Connection) -> SessionRecord | None:
            conn.execute(
                "UPDATE sessions SET status = ?, last_seen_at = ? WHERE id = ? AND ended_at IS NULL",
                (status.value, now(), session_id),
            )
            row = conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
            return _session(row) if row and row["ended_at"] is None else None

        record = await self._write(update)
        self.notifier.publish(["sessions"])
        return record

    async def touch_session(self, session_id: str, pid: int | None = None) -> None:
        await self._write(
            lambda c: c.execute(
                "UPDATE sessions SET last_seen_at = ?, pid = COALESCE(?, pid) WHERE id = ?",
                (now(), pid, session_id),
            )
        )

    async def set_process(self, session_id: str, pid: int, spawner_pid: int | None, log_path: str | None) -> None:
        await self._write(
            lambda c: c.execute(
                "UPDATE sessions SET pid = ?, spawner_pid = ?, log_path = ? WHERE id = ?",
                (pid, spawner_pid, log_path, session_id),
            )
        )

    async def set_exit_code(self, session_id: str, exit_code: int, status: SessionStatus) -> None:
        await self._write(
            lambda c: c.execute(
                "UPDATE sessions SET exit_code = ?, status = ? WHERE id = ? AND ended_at IS NOT NULL",
                (exit_code, status.value, session_id),
            )
        )
        self.notifier.publish(["sessions"])

    async def revive_session(self, session_id: str, status: SessionStatus, pid: int | None) -> SessionRecord:
        def revive(conn: sqlite3.Connection) -> SessionRecord:
            conn.execute(
                "UPDATE sessions SET status = ?, pid = ?, ended_at = NULL, exit_code = NULL, last_seen_at = ?"
                " WHERE id = ?",
                (status.value, pid, now(), session_id),
            )
            row = conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                raise NotFound(f"No session {session_id!r}.")
            return _session(row)

        record = await self._write(revive)
        self.notifier.publish(["sessions"])
        return record

    async def end_session(self, session_id: str, status: SessionStatus, exit_code: int | None) -> SessionRecord | None:
        def end(conn: sqlite3.Connection) -> SessionRecord | None:
            ts = now()
            cur = conn.execute(
                "UPDATE sessions SET status = ?, exit_code = ?, ended_at = ?, last_seen_at = ?"
                " WHERE id = ? AND ended_at IS NULL",
                (status.value, exit_code, ts, ts, session_id),
            )
            if cur.rowcount != 1:
                return None
            return _session(conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone())

        record = await self._write(end)
        if record is not None:
            self.notifier.publish(["sessions"])
        return record

    # -- mail -----------------------------------------------------------------
    async def insert_message(self, message: NewMessage) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "INSERT INTO messages (id, thread_id, reply_to, sender_id, subject, body, priority, type,"
                " task_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    message.id,
                    message.thread_id,
                    message.reply_to,
                    message.sender_id,
                    message.subject,
                    message.body,
                    message.priority.rank,
                    message.type.value,
                    message.task_id,
                    message.created_at,
                ),
            )
            seq = cur.lastrowid
            conn.executemany(
                "INSERT INTO receipts (session_id, message_seq, status, priority) VALUES (?, ?, 'sent', ?)",
                [(rid, seq, message.priority.rank) for rid in message.recipient_ids],
            )

        await self._write(insert)
        self.notifier.publish([mail_topic(rid) for rid in message.recipient_ids])

    async def get_message(self, message_id: str) -> Message | None:
        def get(conn: sqlite3.Connection) -> Message | None:
            row = conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.id = ?", (message_id,))
            found = row.fetchone()
            return _message(found) if found else None

        return await self._read(get)

    async def thread_exists(self, thread_id: str) -> bool:
        return await self._read(
            lambda c: (
                c.execute("SELECT 1 FROM messages WHERE thread_id = ? LIMIT 1", (thread_id,)).fetchone() is not None
            )
        )

    @staticmethod
    def _unread_sync(conn: sqlite3.Connection, session_id: str) -> Unread:
        count, top = conn.execute(
            "SELECT COUNT(*), MIN(priority) FROM receipts WHERE session_id = ? AND status = 'sent'",
            (session_id,),
        ).fetchone()
        return Unread(count=count, urgent=top is not None and top <= Priority.high.rank)

    async def unread(self, session_id: str) -> Unread:
        return await self._read(self._unread_sync, session_id)

    async def take_unread(self, session_id: str, limit: int) -> tuple[list[Message], int]:
        if (await self.unread(session_id)).count == 0:
            return [], 0  # nothing to take: spare the write lock

        def take(conn: sqlite3.Connection) -> tuple[list[Message], int]:
            seqs = [
                r[0]
                for r in conn.execute(
                    "SELECT message_seq FROM receipts WHERE session_id = ? AND status = 'sent'"
                    " ORDER BY priority, message_seq LIMIT ?",
                    (session_id, limit),
                )
            ]
            if not seqs:
                return [], 0
            ts = now()
            conn.executemany(
                "UPDATE receipts SET status = 'delivered', delivered_at = ?"
                " WHERE session_id = ? AND message_seq = ? AND status = 'sent'",
                [(ts, session_id, seq) for seq in seqs],
            )
            rows = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.seq IN ({_placeholders(len(seqs))})"
                " ORDER BY m.priority, m.seq",
                seqs,
            ).fetchall()
            remaining = self._unread_sync(conn, session_id).count
            return [_message(r) for r in rows], remaining

        taken, remaining = await self._write(take)
        if taken:
            self.notifier.publish([RECEIPTS])
        return taken, remaining

    async def recent_read(self, session_id: str, limit: int) -> list[Message]:
        def recent(conn: sqlite3.Connection) -> list[Message]:
            rows = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM receipts r JOIN messages m ON m.seq = r.message_seq"
                " JOIN sessions s ON s.id = m.sender_id"
                " WHERE r.session_id = ? AND r.status != 'sent' ORDER BY m.seq DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
            return [_message(r) for r in rows]

        return await self._read(recent)

    async def thread(self, thread_id: str) -> list[ThreadMessage]:
        def thread(conn: sqlite3.Connection) -> list[ThreadMessage]:
            rows = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.thread_id = ? ORDER BY m.seq",
                (thread_id,),
            ).fetchall()
            if not rows:
                return []
            receipts = _receipts(conn, [r["seq"] for r in rows])
            return [ThreadMessage(**_message(row).model_dump(), receipts=receipts.get(row["seq"], [])) for row in rows]

        return await self._read(thread)

    async def mark_thread_delivered(self, thread_id: str, session_id: str) -> int:
        """The viewer was just shown the whole thread: its unread receipts in it are now delivered."""

        def mark(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "UPDATE receipts SET status = 'delivered', delivered_at = ? WHERE session_id = ?"
                " AND status = 'sent' AND message_seq IN (SELECT seq FROM messages WHERE thread_id = ?)",
                (now(), session_id, thread_id),
            )
            return cur.rowcount

        marked: int = await self._write(mark)
        if marked:
            self.notifier.publish([RECEIPTS])
        return marked

    async def ack(self, session_id: str, message_ids: Sequence[str]) -> list[str]:
        ids = list(dict.fromkeys(message_ids))

        def ack(conn: sqlite3.Connection) -> list[str]:
            seq_of = dict(
                conn.execute(f"SELECT id, seq FROM messages WHERE id IN ({_placeholders(len(ids))})", ids).fetchall()
            )
            unknown = [i for i in ids if i not in seq_of]
            if unknown:
                raise NotFound(
                    f"No message with id {', '.join(map(repr, unknown))}.",
                    "Pass message_id values from mail_inbox or mail_wait results.",
                )
            seqs = list(seq_of.values())
            mine = {
                r[0]
                for r in conn.execute(
                    f"SELECT message_seq FROM receipts WHERE session_id = ? AND message_seq IN"
                    f" ({_placeholders(len(seqs))})",
                    [session_id, *seqs],
                )
            }
            foreign = [i for i in ids if seq_of[i] not in mine]
            if foreign:
                raise Forbidden(
                    f"Message {', '.join(map(repr, foreign))} was not sent to you.",
                    "You can only acknowledge mail addressed to you; nothing was acknowledged.",
                )
            ts = now()
            conn.execute(
                "UPDATE receipts SET status = 'acked', acked_at = ?, delivered_at = COALESCE(delivered_at, ?)"
                f" WHERE session_id = ? AND status != 'acked' AND message_seq IN ({_placeholders(len(seqs))})",
                [ts, ts, session_id, *seqs],
            )
            return ids

        acked: list[str] = await self._write(ack)
        self.notifier.publish([RECEIPTS])
        return acked
