"""Wake-ups for PostgreSQL: NOTIFY right after each write commits, LISTEN on the store's primary connection.

A writer sends ``pg_notify(channel, payload)`` in the same round trip as its
COMMIT, just after it and only if it succeeded, so the notification reaches every
process on every machine listening on the channel once the change is visible (see
`PostgresExecutor._commit` for why not inside the transaction). The payload
is ``<origin>\\n<topic>\\n<topic>...``; a store object ignores its own origin
because it already rang its local subscriptions after the commit.

LISTEN belongs to a connection: it is the executor's primary connection, the
same one its transactions use while it is free, so an idle server holds one
connection. When that connection drops (server restart, `pg_terminate_backend`,
network), the executor reconnects with backoff and the listener rings every local
subscription, because notifications sent during the gap are lost: waiters look
at the store again, which is the truth. Even with the listener down, waiters wake
within the service's safety-net poll.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

import anyio

from maestro_mcp.store.notify import ALL, WATCHERS, Hub, topic_owner

# NOTIFY payloads must stay below 8000 bytes; a long recipient list is split over several.
MAX_PAYLOAD = 7000


FIREHOSE = "+"


def channel_for(schema: str, owner: str = ALL) -> str:
    """The channel of `owner` (a session id, ALL for store-wide topics, FIREHOSE for everything).
    Per schema: several stores can share a database without waking each other."""
    name = f"maestro.{schema}" if owner == ALL else f"maestro.{schema}.{owner}"
    if len(name.encode()) <= 63:  # an identifier is at most 63 bytes
        return name
    return "maestro." + hashlib.sha256(f"{schema}\n{owner}".encode()).hexdigest()[:24]


def listened(schema: str, owner: str) -> list[str]:
    """What a process serving `owner` listens on: the common channel, and its own or the firehose."""
    return [channel_for(schema, ALL), channel_for(schema, FIREHOSE if owner == ALL else owner)]


def routed(schema: str, topics: Iterable[str]) -> dict[str, list[str]]:
    """channel -> the topics to send on it."""
    out: dict[str, list[str]] = {}
    for topic in dict.fromkeys(topics):
        owner = topic_owner(topic)
        if owner == WATCHERS:
            # Receipts changing matter only to a human's live view, which looks again every second
            # anyway. Not worth a NOTIFY: every notifying commit wakes every listening backend of the
            # database (PostgreSQL does not sort listeners by channel), fifty of them with fifty servers.
            # A worker's own activity is the exception, on the firehose only: `maestro logs -f` promises
            # an event within a second, and a relay commits at most every 50 ms.
            if topic.startswith("activity:"):
                out.setdefault(channel_for(schema, FIREHOSE), []).append(topic)
            continue
        channels = [channel_for(schema, FIREHOSE)]
        if owner == ALL:
            channels.append(channel_for(schema, ALL))
        else:
            channels.append(channel_for(schema, owner))
        for channel in channels:
            out.setdefault(channel, []).append(topic)
    return out


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


class Listener:
    """Hears its channels on whichever connection is the executor's primary one."""

    def __init__(self, channels: list[str], hub: Hub, origin: str) -> None:
        self.channels = channels
        self.hub = hub
        self.origin = origin
        self.generation = 0
        """How many connections it has listened on; tests wait for it to grow after a drop."""
        self.backend_pid: int | None = None
        self._changed = anyio.Event()

    async def attach(self, conn: Any) -> None:
        """LISTEN on a new primary connection. After the first, ring everyone: wake-ups may have been lost."""
        for channel in self.channels:
            await conn.add_listener(channel, self._on_notify)
        self.backend_pid = conn.get_server_pid()
        self.generation += 1
        if self.generation > 1:
            self.hub.ring_all()
        self._changed.set()
        self._changed = anyio.Event()

    def detached(self) -> None:
        self.backend_pid = None

    async def wait_connected(self, generation: int, timeout: float) -> bool:  # noqa: ASYNC109 - bounded on purpose
        """Wait until the listener has connected at least `generation` times; False on timeout."""
        with anyio.move_on_after(timeout):
            while self.generation < generation:
                await self._changed.wait()
        return self.generation >= generation

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        origin, _, rest = payload.partition("\n")
        if origin != self.origin:
            self.hub.ring(rest.split("\n") if rest else [])

    def state(self) -> str:
        if self.backend_pid is None:
            return "reconnecting" if self.generation else "not listening yet"
        return (
            f"listening on {', '.join(self.channels)} (backend pid {self.backend_pid}, {self.generation} connection(s))"
        )
