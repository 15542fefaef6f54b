"""One dedicated thread per SQLite connection, and the bounded write lock every process of a store shares.

Every store method is one function run on a worker thread, so the thread round
trip is paid on every tool call, often several times. `anyio.to_thread.run_sync`
costs about 55 µs per round trip (a shared pool, a limiter, context copies); a
thread that owns its connection and takes jobs from a queue costs about 18 µs.
One thread per connection also serialises that connection's transactions by
itself, as sqlite3 requires.

Like `anyio.to_thread.run_sync`, a job is never abandoned: a cancelled caller
waits for its transaction to finish, commit or roll back, so a store method is
always applied whole or not at all.

Writers of one store take turns through an advisory file lock (`flock`) held
around each write transaction. Without it, processes that want the write lock
at once meet SQLite's busy handler, which retries after sleeping 1, 2, 5, 10,
15, 20, 25 ... ms: with fifty agents sending, a message would often wait tens
of milliseconds for a lock that was free after a fraction of one. The kernel
hands an `flock` to the next waiter the moment it is released.

The lock is bounded (`WriteLock`): its holder writes its pid into the lock
file, and a writer that has waited a while looks at that process. A holder
that has died released the lock with its last breath (the kernel does that), so
only a *stopped* holder (SIGSTOP, Ctrl-Z, a debugger) can keep others waiting;
the waiter then stops waiting for the `flock` and asks SQLite directly, which
either lets it go on (the holder was stopped outside its transaction) or says
the database is locked, and the caller gets an error naming the holder's pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]

# How often a waiter looks at the holder of the write lock.
HOLDER_CHECK_S = 0.25
# A holder whose state cannot be read (no /proc) is given this long before the waiter asks SQLite itself.
UNKNOWN_HOLDER_S = 4.0


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def process_state(pid: int) -> str | None:
    """'running', 'stopped', 'gone', or None where it cannot be told (no /proc)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    if state in ("T", "t"):
        return "stopped"
    return "gone" if state in ("Z", "X") else "running"


class WriteLock:
    """An exclusive `flock` on the store's lock file, shared by every process of the store, bounded.

    `hold()` waits for the lock while its holder runs. When the holder is stopped (or cannot be
    looked at for long), it gives up the wait and yields False: the caller then goes ahead without
    the lock, relying on SQLite's own locking (with a short busy timeout), which is what the lock
    only speeds up. The blocking `flock` call runs on a helper thread, so giving up never leaves
    this thread stuck; the helper hands a lock it gets late back at once.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.fd: int | None = None
        if path is not None:
            with contextlib.suppress(OSError):  # a read-only place: go without
                self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._cond = threading.Condition()
        self._held = False
        self._wanted = False
        self._waiter: threading.Thread | None = None
        self._pid = b"%d\n" % os.getpid()

    def holder(self) -> int | None:
        """The pid that last took the lock (the current holder, while it is held)."""
        if self.fd is None:
            return None
        try:
            return int(os.pread(self.fd, 32, 0).split(b"\n", 1)[0] or b"0") or None
        except (OSError, ValueError):
            return None

    @contextlib.contextmanager
    def hold(self) -> Iterator[bool]:
        """Hold the lock for a transaction. Yields False when the holder is stopped and it was not taken."""
        if self.fd is None:
            yield True
            return
        taken = self._acquire()
        try:
            yield taken
        finally:
            if taken:
                with self._cond:
                    self._held = False
                    fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _acquire(self) -> bool:
        assert self.fd is not None
        with self._cond:
            if self._waiter is None:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._waiter = threading.Thread(target=self._wait_blocking, name="maestro-flock", daemon=True)
                    self._waiter.start()
                else:
                    self._held = True
            self._wanted = True
            waited = 0.0
            while not self._held:
                if self._cond.wait(HOLDER_CHECK_S):
                    continue
                waited += HOLDER_CHECK_S
                holder = self.holder()
                state = process_state(holder) if holder else None
                if state == "stopped" or (state is None and waited >= UNKNOWN_HOLDER_S):
                    self._wanted = False
                    return False
            self._wanted = False
        os.pwrite(self.fd, self._pid, 0)
        return True

    def _wait_blocking(self) -> None:
        assert self.fd is not None
        fcntl.flock(self.fd, fcntl.LOCK_EX)  # until the holder lets go, however long that takes
        with self._cond:
            self._waiter = None
            if self._wanted:
                self._held = True
                self._cond.notify_all()
            else:  # the writer gave up waiting meanwhile: nobody here needs it
                fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


class ConnectionThread:
    """Runs functions, one at a time and in order, on a thread of its own (started on first use)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Outside asyncio (anyio on trio) the anyio pool does the job; the limiter keeps it one at a time.
        self._fallback = anyio.CapacityLimiter(1)

    def _serve(self) -> None:
        while (job := self._queue.get()) is not None:
            loop, future, fn = job
            try:
                outcome: tuple[Any, BaseException | None] = (fn(), None)
            except BaseException as exc:
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, future, *outcome)

    async def run(self, fn: Callable[[], T]) -> T:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return await anyio.to_thread.run_sync(fn, limiter=self._fallback)
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
            self._thread.start()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, future, fn))
        with anyio.CancelScope(shield=True):
            result = await future
        return result

    async def close(self) -> None:
        """Let queued jobs finish, then stop the thread."""
        if self._thread is None:
            return
        await self.run(lambda: None)
        self._queue.put(None)
        self._thread = None
