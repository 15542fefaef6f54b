"""Wake-ups for PostgreSQL: NOTIFY inside each write transaction, LISTEN on one dedicated connection.

A writer sends ``pg_notify(channel, payload)`` in the same transaction as its
change, so the notification is delivered exactly when (and only if) the change
commits, to every process on every machine listening on the channel. The payload
is ``<origin>\\n<topic>\\n<topic>...``; a store object ignores its own origin
because it already rang its local subscriptions after the commit.

The listening connection is outside the pool (LISTEN is per connection). When
it drops (server restart, `pg_terminate_backend`, network), the listener
reconnects with backoff and then rings every local subscription, because
notifications sent during the gap are lost: waiters look at the store again,
which is the truth. A health query every few seconds notices a silently dead
connection. Even with the listener down, waiters wake within the service's
safety-net poll.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import anyio
import anyio.abc
import asyncpg

from .notify import Hub

log = logging.getLogger(__name__)

# NOTIFY payloads must stay below 8000 bytes; a long recipient list is split over several.
MAX_PAYLOAD = 7000
HEALTH_CHECK_S = 5.0
HEALTH_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 10.0
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 5.0

# What a lost or unusable connection raises (as opposed to a bad statement).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


def channel_for(schema: str) -> str:
    """One channel per schema: several stores can share a database without waking each other."""
    name = f"maestro.{schema}"
    if len(name.encode()) <= 63:  # an identifier is at most 63 bytes
        return name
    return "maestro." + hashlib.sha256(schema.encode()).hexdigest()[:24]


def payloads(origin: str, topics: Iterable[str]) -> Iterator[str]:
    """`origin` then topics, one per line, split so that no payload exceeds MAX_PAYLOAD bytes."""
    chunk: list[str] = []
    size = len(origin)
    for topic in dict.fromkeys(topics):
        if chunk and size + len(topic) + 1 > MAX_PAYLOAD:
            yield "\n".join([origin, *chunk])
            chunk, size = [], len(origin)
        chunk.append(topic)
        size += len(topic) + 1
    if chunk:
        yield "\n".join([origin, *chunk])


def _setter(event: anyio.Event) -> Callable[[Any], None]:
    return lambda _conn: event.set()


class PgListener:
    """The dedicated LISTEN connection of one store object, reconnecting after every drop."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        channel: str,
        hub: Hub,
        origin: str,
        location: str,
    ) -> None:
        self._connect = connect
        self.channel = channel
        self.hub = hub
        self.origin = origin
        self.location = location
        self.generation = 0
        """How many times the listener has connected; tests wait for it to grow after a drop."""
        self.backend_pid: int | None = None
        self._changed = anyio.Event()

    async def wait_connected(self, generation: int, timeout: float) -> bool:  # noqa: ASYNC109 - bounded on purpose
        """Wait until the listener has connected at least `generation` times; False on timeout."""
        with anyio.move_on_after(timeout):
            while self.generation < generation:
                await self._changed.wait()
        return self.generation >= generation

    def _connected(self, pid: int | None) -> None:
        self.backend_pid = pid
        if pid is not None:
            self.generation += 1
        self._changed.set()
        self._changed = anyio.Event()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        origin, _, rest = payload.partition("\n")
        if origin != self.origin:
            self.hub.ring(rest.split("\n") if rest else [])

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled. Reports started after the first attempt, connected or not:
        a server that is down now must not stop the caller, the safety-net poll covers the gap."""
        backoff = BACKOFF_MIN_S
        started = False
        while True:
            conn: Any = None
            try:
                with anyio.fail_after(CONNECT_TIMEOUT_S):
                    conn = await self._connect()
                lost = anyio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(self.channel, self._on_notify)
                reconnected = self.generation > 0
                self._connected(conn.get_server_pid())
                if reconnected:
                    log.info("listener for %s reconnected", self.location)
                    self.hub.ring_all()  # wake-ups sent while we were away are lost: look again
                if not started:
                    started = True
                    task_status.started()
                backoff = BACKOFF_MIN_S
                while not lost.is_set():
                    with anyio.move_on_after(HEALTH_CHECK_S):
                        await lost.wait()
                    if not lost.is_set():
                        with anyio.fail_after(HEALTH_TIMEOUT_S):
                            await conn.fetchval("SELECT 1")
            except Exception as exc:  # never let the listener take its server down: reconnect instead
                level = logging.WARNING if isinstance(exc, CONNECTION_ERRORS) else logging.ERROR
                log.log(level, "listener for %s lost its connection (%r); reconnecting", self.location, exc)
            finally:
                self._connected(None)
                if conn is not None:
                    conn.terminate()  # never blocks: the connection is dead or about to be
            if not started:
                started = True
                task_status.started()
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)
