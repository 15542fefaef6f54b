"""Wake-ups: how a waiter learns, within milliseconds, that something it waits for was committed.

A waiter subscribes to a topic (``mail:<session_id>``, or ``*`` for everything)
*before* it checks the store, then sleeps on its subscription. Whoever commits
a change publishes its topics after the commit. Publishing fires subscriptions
in this process directly and, through a `Transport`, in every other process
on the same store. A lost wake-up costs at most one safety-net poll
(`config.SAFETY_POLL_S`), never a message: the store is the truth, the
notifier only says "look again".

Each backend brings its transport: Unix datagram sockets for SQLite
(`sqlite.transport`), LISTEN/NOTIFY for PostgreSQL (`postgres.transport`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

import anyio
import anyio.abc

ALL = "*"


def mail_topic(session_id: str) -> str:
    return f"mail:{session_id}"


def state_topic(key: str) -> str:
    """A shared-state key changed. Store-wide (any session may wait on any key): `topic_owner` is ALL."""
    return f"state:{key}"


# Receipts changing (mail shown, acked) matter only to humans watching: their processes listen as "_all".
RECEIPTS = "receipts"
WATCHERS = "_all"


def topic_owner(topic: str) -> str:
    """The session a topic concerns, WATCHERS for receipts, or ALL for store-wide topics such as ``tasks``."""
    kind, _, owner = topic.partition(":")
    if kind == "mail" and owner:
        return owner
    # Activity is many small events a second per worker, of interest to displays only, never to agents.
    return WATCHERS if topic == RECEIPTS or kind == "activity" else ALL


class Subscription:
    """One waiter's doorbell. `wait` returns True when rung since the last wait."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._event = anyio.Event()

    def ring(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 - a doorbell with a deadline is the point
        rung = False
        with anyio.move_on_after(max(timeout, 0.0)):
            await self._event.wait()
            rung = True
        if self._event.is_set():
            self._event = anyio.Event()
        return rung


class Hub:
    """The subscriptions of one process, keyed by topic."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[Subscription]:
        sub = Subscription(topic)
        self._subs.setdefault(topic, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[topic]

    def ring(self, topics: Iterable[str]) -> None:
        """Fire every local subscription to any of `topics` (and every ``*`` subscription)."""
        wildcard = self._subs.get(ALL, ())
        for sub in wildcard:
            sub.ring()
        for topic in topics:
            for sub in self._subs.get(topic, ()):
                sub.ring()

    def ring_all(self) -> None:
        """Fire every subscription: after a gap in which wake-ups may have been lost, everyone looks again."""
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.ring()


class Transport(Protocol):
    """Carries topics to the other processes of the store."""

    async def run(
        self, hub: Hub, owner: str, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Hear other processes' topics for `owner` until cancelled; report started once listening."""
        ...

    def send(self, topics: Iterable[str]) -> None: ...

    def close(self) -> None: ...


class Notifier:
    """A process's hub plus the transport that reaches the other processes."""

    def __init__(self, transport: Transport | None) -> None:
        self.hub = Hub()
        self.transport = transport
        self._started = False

    async def listen(self, owner: str, task_group: anyio.abc.TaskGroup) -> None:
        """Start hearing other processes' wake-ups for `owner` (a session id, or ALL).

        The listener runs in `task_group` (the caller's lifetime) and stops when it is cancelled.
        """
        if self.transport is not None and not self._started:
            self._started = True
            await task_group.start(self.transport.run, self.hub, owner)

    def subscribe(self, topic: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        return self.hub.subscribe(topic)

    def publish(self, topics: Iterable[str]) -> None:
        topics = list(topics)
        self.hub.ring(topics)
        if self.transport is not None:
            self.transport.send(topics)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
