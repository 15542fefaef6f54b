"""One dedicated thread per SQLite connection: the cheapest way off the event loop and back.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _open_lock(path: str | None) -> int | None:
    """The lock file's descriptor, or None to go without (no path, or a read-only place)."""
    if path is None:
        return None
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None


@contextlib.contextmanager
def _locked(fd: int | None) -> Iterator[None]:
    if fd is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


class ConnectionThread:
    """Runs functions, one at a time and in order, on a thread of its own (started on first use).

    With `lock_path`, each function runs holding an exclusive `flock` on that file, which every
    process of the store takes for its writes.
    """

    def __init__(self, name: str, lock_path: str | None = None) -> None:
        self.name = name
        self.lock_path = lock_path
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Outside asyncio (anyio on trio) the anyio pool does the job; the limiter keeps it one at a time.
        self._fallback = anyio.CapacityLimiter(1)

    def _serve(self) -> None:
        lock_fd = _open_lock(self.lock_path)
        try:
            while (job := self._queue.get()) is not None:
                loop, future, fn = job
                try:
                    with _locked(lock_fd):
                        outcome: tuple[Any, BaseException | None] = (fn(), None)
                except BaseException as exc:
                    outcome = (None, exc)
                with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
                    loop.call_soon_threadsafe(_settle, future, *outcome)
        finally:
            if lock_fd is not None:
                os.close(lock_fd)

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
