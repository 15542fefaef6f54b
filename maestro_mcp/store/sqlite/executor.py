"""The SQLite executor: one file per project, WAL, one write connection per process.

Why stdlib `sqlite3` on worker threads rather than aiosqlite: a store method is
one transaction of several statements, and aiosqlite pays one thread hop per
statement and per fetch. Here each transaction is one step driven to its end on
its connection's own thread (one hop; see `thread.py`), which also serialises
the connection. Cancellation waits for the thread, so a transaction is always
committed or rolled back whole, never abandoned half-way.

Writes use `BEGIN IMMEDIATE`, so a writer takes the database lock before it
reads what it will change: two processes can never both win a conditional
update (a receipt, a claim). Readers use a second, query-only connection and
never block writers (WAL).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from maestro_mcp.errors import StoreError
from maestro_mcp.store import schema
from maestro_mcp.store.notify import Notifier, Subscription
from maestro_mcp.store.sql import Query
from maestro_mcp.store.steps import Lock, Op, Refused, Transaction, Wake, drive

from .dialect import SQLITE
from .thread import ConnectionThread, WriteLock
from .transport import SocketTransport, socket_dir_for

T = TypeVar("T")

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0
# Going ahead without the write lock (its holder is stopped): how long SQLite's own lock is waited for.
BYPASS_BUSY_MS = 1500


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


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def _create(path: str) -> None:
    """A new, empty store file, in WAL mode, put in place in one step: SQLite's own file is 0 bytes from its
    open until its first page is written, and a process interrupted then (Ctrl-C) would leave a 0-byte
    file that every later command refuses as a truncated store."""
    folder, name = os.path.split(path)
    draft = os.path.join(folder, f".{name}.new-{os.getpid()}")
    try:
        conn = sqlite3.connect(draft, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")  # its first page: the file is a database from now on
        finally:
            conn.close()
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs stands
            os.link(draft, path)
    finally:
        for leftover in (draft, draft + "-wal", draft + "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


class _Locked(Exception):
    """Opening met a lock another process held (see `SQLiteExecutor.open`)."""


def _refused(exc: sqlite3.Error) -> Refused:
    """What the database refused, in the words every backend uses."""
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        if text.startswith("UNIQUE constraint failed: "):
            return Refused("unique", text.removeprefix("UNIQUE constraint failed: ").split(",")[0].strip(), text)
        if "FOREIGN KEY" in text:
            return Refused("foreign_key", "", text)
    return Refused("value", "", text)


# SQLite's primary result codes (the low byte of `sqlite_errorcode`) that mean the file, not the call.
SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_NOTADB = 8, 10, 11, 13, 26
RECOVER = (
    "Stop the project's agents and keep a copy of the file; then restore a `maestro export` snapshot"
    " into a new store (move the file aside, `maestro init`, `maestro import FILE`), or salvage it with"
    " `sqlite3 FILE .recover | sqlite3 recovered.db`."
)


def store_failure(path: str, exc: sqlite3.Error | OSError) -> StoreError:
    """What failed with the store's file, in words a human or a model can act on."""
    if isinstance(exc, OSError):
        code = SQLITE_FULL if exc.errno == errno.ENOSPC else SQLITE_IOERR
    else:
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if code == SQLITE_FULL or "disk is full" in str(exc):
        return StoreError(
            f"The disk of the store {path} is full: nothing of this call was saved.",
            "Free space on that disk (`df` shows it), then try again; what was stored before is intact.",
        )
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return StoreError(f"The store {path} is damaged ({exc}).", RECOVER)
    if code == SQLITE_READONLY:
        return StoreError(
            f"The store {path} cannot be written ({exc}).", "Check the file's and its directory's permissions."
        )
    if code == SQLITE_IOERR:
        return StoreError(f"The store {path} could not be read or written ({exc}).", "Check the disk it is on.")
    return StoreError(f"The store {path} failed: {exc}.", "Try again; `maestro doctor` checks the store.")


def _identity(path: str) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


class SQLiteExecutor:
    """Runs transactions of steps on one SQLite file; wakes other processes through Unix sockets."""

    dialect = SQLITE

    def __init__(self, path: str) -> None:
        self.path = str(Path(path))
        self.location = self.path
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        # One thread per connection: a transaction is one cheap hop, and each connection runs one at a time.
        self._write_thread = ConnectionThread("maestro-sqlite-write")
        self._read_thread = ConnectionThread("maestro-sqlite-read")
        self._lock = WriteLock(None)
        self.notifier = Notifier(SocketTransport(socket_dir_for(self.path)))
        self._file: tuple[int, int] | None = None
        """(device, inode) of the file opened: another file at the path later means it was replaced."""
        self._gone: StoreError | None = None

    # -- opening ----------------------------------------------------------------------------------------
    async def open(self) -> None:
        # Servers started at the same moment on a new project race to create the file and switch it to
        # WAL; SQLite answers some of them "locked" at once (it sees a deadlock and does not wait): those
        # try again, with backoff, within the busy timeout.
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_delay(BUSY_TIMEOUT_S),
                wait=wait_exponential(multiplier=0.01, max=0.5),
                retry=retry_if_exception_type(_Locked),
                reraise=True,
            ):
                with attempt:
                    await anyio.to_thread.run_sync(self._open_sync)
        except _Locked as exc:
            raise StoreError(
                f"{self.path} stayed locked by another process for {BUSY_TIMEOUT_S:.0f} s.",
                "See which process holds it (`fuser` on the file, or `maestro doctor`), then try again.",
            ) from exc

    def _open_sync(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if self._lock.fd is None:
            self._lock = WriteLock(f"{self.path}-lock")  # once its directory exists
        writer: sqlite3.Connection | None = None
        try:
            writer = self._connect_writer()
            mode = writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"Could not switch {self.path} to WAL mode (got {mode!r}).")
            # Most opens find the schema current: a read says so without waiting for the write lock.
            current, _ = self._transaction(writer, schema.current, write=False)
            if current != schema.LATEST:
                self._write_sync(writer, lambda: schema.migrate(self.location))
            reader = _connect(self.path, readonly=True)
        except BaseException as exc:
            if writer is not None:
                writer.close()
            if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
                raise _Locked(str(exc)) from exc
            if isinstance(exc, sqlite3.DatabaseError | OSError) and store_failure(self.path, exc).message.startswith(
                "The disk"
            ):
                raise store_failure(self.path, exc) from exc
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(
                    f"{self.path} is not a usable maestro store: {exc}.",
                    "Restore it from a `maestro export` snapshot, or move it aside and run `maestro init`.",
                ) from exc
            raise
        self._writer, self._reader = writer, reader
        self._file = _identity(self.path)

    def _connect_writer(self) -> sqlite3.Connection:
        """The write connection. A file of 0 bytes is refused: SQLite would take it for a new, empty
        store, and a project whose store was truncated would silently start again from nothing.

        A new store appears whole (`_create`) and under the store's write lock, so a 0-byte file seen while
        holding it is no store being made."""
        if (size := _size(self.path)) is not None and size > 0:
            return _connect(self.path, readonly=False)
        with self._lock.hold():
            size = _size(self.path)
            if size == 0:
                raise StoreError(
                    f"{self.path} is an empty file (0 bytes), not a maestro store: its data, if it had any, is"
                    " not in it.",
                    "If the project had a store, restore a `maestro export` snapshot (move the empty file aside,"
                    " `maestro init`, `maestro import FILE`); if it is meant to be new, delete the file and run"
                    " `maestro init`.",
                )
            if size is None:
                _create(self.path)
            return _connect(self.path, readonly=False)

    def _check_file(self) -> None:
        """Refuse to go on with a file that is no longer the one at the store's path (deleted, or replaced
        by a restore or a copy): everything written would go into a file nobody else opens."""
        if self._gone is None and self._file is not None and _identity(self.path) != self._file:
            now_there = "deleted" if _identity(self.path) is None else "replaced by another file"
            self._gone = StoreError(
                f"The store file {self.path} was {now_there} while this server was running: it writes nothing"
                " more into the file it had open.",
                "Restart the project's agents so that their servers open the store now at that path; if it was"
                " deleted by mistake, restore it from a `maestro export` snapshot.",
            )
            log.error("%s", self._gone)
        if self._gone is not None:
            raise StoreError(self._gone.message, self._gone.hint)

    async def close(self) -> None:
        self.notifier.close()
        await self._write_thread.close()
        await self._read_thread.close()
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer = self._reader = None
        self._lock.close()

    # -- transactions -----------------------------------------------------------------------------------
    def _run(self, conn: sqlite3.Connection, op: Op, wakes: list[str]) -> Any:
        if isinstance(op, Query):
            rendered = self.dialect.render(op.statement)
            try:
                cursor = conn.execute(rendered.sql, self.dialect.args(rendered, op.params))
            except (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError) as exc:
                raise _refused(exc) from exc
            if op.fetch == "all":
                return cursor.fetchall()
            if op.fetch == "one":
                return cursor.fetchone()
            if op.fetch == "value":
                row = cursor.fetchone()
                return None if row is None else row[0]
            if op.fetch == "count":
                return cursor.rowcount
            return None
        if isinstance(op, Wake):
            wakes.extend(op.topics)
        elif not isinstance(op, Lock):  # a Lock: write transactions hold the database lock already
            raise TypeError(f"not a step operation: {op!r}")
        return None

    def _transaction(self, conn: sqlite3.Connection, tx: Transaction[T], *, write: bool) -> tuple[T, list[str]]:
        wakes: list[str] = []
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            result = drive(tx(), lambda op: self._run(conn, op, wakes))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result, wakes

    def _write_sync(self, conn: sqlite3.Connection, tx: Transaction[T]) -> tuple[T, list[str]]:
        self._check_file()
        with self._lock.hold() as taken:
            if taken:
                return self._transaction(conn, tx, write=True)
            # The lock's holder is stopped: ask SQLite itself, briefly. It lets us go on when the holder was
            # stopped outside its transaction, and says "locked" when it was stopped inside one.
            holder = self._lock.holder()
            conn.execute(f"PRAGMA busy_timeout = {BYPASS_BUSY_MS}")
            try:
                return self._transaction(conn, tx, write=True)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                raise StoreError(
                    f"The store's write lock is held by process {holder}, which is stopped"
                    " (SIGSTOP, Ctrl-Z or a debugger): every writer of this store waits for it.",
                    f"Resume it (kill -CONT {holder}) or end it (kill {holder}), then try again;"
                    " nothing it or anyone else committed is lost.",
                ) from exc
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")

    async def write(self, tx: Transaction[T], *, idempotent: bool = False) -> T:
        """Run `tx` as one IMMEDIATE transaction, then ring what it woke. (`idempotent` matters to retrying
        backends; a SQLite transaction either commits or raises.)"""
        conn = self._writer
        if conn is None:
            raise StoreError("The store is closed.")
        try:
            result, wakes = await self._write_thread.run(lambda: self._write_sync(conn, tx))
        except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as exc:
            if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
                raise
            raise store_failure(self.path, exc) from exc
        if wakes:
            self.notifier.publish(wakes)
        return result

    async def read(self, tx: Transaction[T], *, snapshot: bool = False) -> T:
        """Run `tx` on the query-only connection (always one snapshot: a SQLite read transaction is cheap)."""
        conn = self._reader
        if conn is None:
            raise StoreError("The store is closed.")

        def read() -> tuple[T, list[str]]:
            self._check_file()
            return self._transaction(conn, tx, write=False)

        try:
            result, _ = await self._read_thread.run(read)
        except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as exc:
            if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
                raise
            raise store_failure(self.path, exc) from exc
        return result

    # -- wake-ups ---------------------------------------------------------------------------------------
    def subscribe(self, topic: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        return self.notifier.subscribe(topic)

    async def wake(self, topics: Sequence[str]) -> None:
        self.notifier.publish(topics)

    async def listen(self, owner: str, task_group: anyio.abc.TaskGroup) -> None:
        await self.notifier.listen(owner, task_group)

    # -- health -----------------------------------------------------------------------------------------
    async def health(self) -> dict[str, str]:
        def check() -> dict[str, str]:
            conn = self._reader
            if conn is None:
                raise StoreError("The store is closed.")
            problems = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                problems = [p for p in problems if p != "ok"] + [f"journal mode {mode}, not wal"]
            return {
                "backend": f"sqlite {sqlite3.sqlite_version}",
                "integrity": "ok" if problems == ["ok"] else "; ".join(problems[:5]),
                "journal_mode": mode,
                "notifier": f"unix sockets in {socket_dir_for(self.path)}",
                "notifier_fix": "Check that that directory is writable by every agent's server.",
            }

        try:
            return await self._read_thread.run(check)
        except sqlite3.DatabaseError as exc:
            return {"backend": f"sqlite {sqlite3.sqlite_version}", "integrity": str(store_failure(self.path, exc))}
