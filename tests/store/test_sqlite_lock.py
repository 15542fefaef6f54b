"""SQLite only: the write lock every process of a store shares is bounded.

A real process holds the lock inside a write transaction (lock_holder.py). Stopped
(SIGSTOP), it can keep others from writing, but not for ever: within 5 s they get an
error naming it and saying what to do; once it is resumed, everything goes on and
nothing committed is lost. Killed, it releases the lock with its last breath.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from store_builders import session_record
from storekit import StoreKit

from maestro_mcp.errors import StoreError
from maestro_mcp.store import Store

pytestmark = pytest.mark.anyio

HOLDER = Path(__file__).with_name("lock_holder.py")
BOUND_S = 5.0
START_S = 30.0


@pytest.fixture
def backend() -> str:
    return "sqlite"


class Holder:
    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        assert process.stdout is not None
        self.lines = BufferedByteReceiveStream(process.stdout)

    async def line(self) -> str:
        with anyio.fail_after(START_S):
            return (await self.lines.receive_until(b"\n", 1000)).decode()

    async def tell(self, text: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(text.encode() + b"\n")


@pytest.fixture
async def holder(kit: StoreKit) -> AsyncIterator[Holder]:
    """A process holding the write lock (and SQLite's), its transaction open, its session not yet committed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HOLDER.parent), *sys.path])}
    async with await anyio.open_process([sys.executable, str(HOLDER), kit.location, "holder"], env=env) as process:
        held = Holder(process)
        try:
            assert await held.line() == "holding"
            yield held
        finally:
            if process.returncode is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
            with anyio.fail_after(START_S):
                await process.wait()


async def test_a_stopped_holder_of_the_write_lock_is_named_within_bounds_and_nothing_is_lost(
    kit: StoreKit, holder: Holder
) -> None:
    store = await kit.open()
    os.kill(holder.process.pid, signal.SIGSTOP)

    started = time.monotonic()
    with anyio.fail_after(BOUND_S), pytest.raises(StoreError) as refused:
        await store.create_session(session_record("waiting"))
    text = str(refused.value)

    assert time.monotonic() - started < BOUND_S
    assert f"process {holder.process.pid}" in text and "stopped" in text
    assert f"kill -CONT {holder.process.pid}" in text and "nothing" in text
    assert await store.get_session("waiting") is None  # reads go on meanwhile

    os.kill(holder.process.pid, signal.SIGCONT)
    await holder.tell("commit")
    assert await holder.line() == "committed"
    with anyio.fail_after(BOUND_S):
        await store.create_session(session_record("waiting"))
    assert {s.name for s in await store.list_sessions()} == {"holder", "waiting"}


async def test_a_killed_holder_frees_the_lock_at_once_and_its_half_transaction_is_gone(
    kit: StoreKit, holder: Holder
) -> None:
    store: Store = await kit.open()
    holder.process.kill()
    await holder.process.wait()

    with anyio.fail_after(BOUND_S):
        await store.create_session(session_record("after"))

    assert {s.name for s in await store.list_sessions()} == {"after"}
