"""The thread each SQLite connection runs on, and the write lock writers share (maestro_mcp/store/sqlite/thread.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anyio
import pytest

from maestro_mcp.store.sqlite.thread import ConnectionThread, WriteLock

pytestmark = pytest.mark.anyio


async def test_jobs_run_in_order_on_one_thread_off_the_event_loop() -> None:
    worker = ConnectionThread("test")
    seen: list[tuple[int, int]] = []
    try:
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(worker.run, lambda i=i: seen.append((i, threading.get_ident())))
    finally:
        await worker.close()

    assert sorted(i for i, _ in seen) == list(range(20))
    threads = {t for _, t in seen}
    assert len(threads) == 1 and threading.get_ident() not in threads


async def test_a_failing_job_raises_in_the_caller_and_the_thread_goes_on() -> None:
    worker = ConnectionThread("test")
    try:
        with pytest.raises(ZeroDivisionError):
            await worker.run(lambda: 1 / 0)
        assert await worker.run(lambda: 42) == 42
    finally:
        await worker.close()


async def test_a_cancelled_caller_still_waits_for_its_job_to_finish() -> None:
    """A transaction is applied whole or not at all: cancellation never abandons one half-way."""
    worker = ConnectionThread("test")
    started, release = threading.Event(), threading.Event()
    finished: list[bool] = []

    def job() -> None:
        started.set()
        release.wait(5)
        finished.append(True)

    try:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run, job)
                await anyio.to_thread.run_sync(started.wait, 5)
                tg.cancel_scope.cancel()
                release.set()
        assert finished == [True]
    finally:
        await worker.close()


async def test_writers_sharing_a_lock_file_never_overlap(tmp_path: Path) -> None:
    lock = str(tmp_path / "store.db-lock")
    first, second = ConnectionThread("a"), ConnectionThread("b")
    locks = {first: WriteLock(lock), second: WriteLock(lock)}
    inside = 0
    overlaps: list[int] = []
    guard = threading.Lock()

    def job(lock: WriteLock) -> None:
        nonlocal inside
        with lock.hold() as taken:
            assert taken
            with guard:
                inside += 1
                overlaps.append(inside)
            time.sleep(0.001)  # a window for the other thread, were it not kept out
            with guard:
                inside -= 1

    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    for thread, held in locks.items():
                        tg.start_soon(thread.run, lambda held=held: job(held))
    finally:
        await first.close()
        await second.close()
        for held in locks.values():
            held.close()

    assert len(overlaps) == 40
    assert max(overlaps) == 1
