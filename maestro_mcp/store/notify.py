"""Wake-ups: how a waiter learns, within milliseconds, that something it waits for was committed.

A waiter subscribes to a topic (``mail:<session_id>``, or ``*`` for everything)
*before* it checks the store, then sleeps on its subscription. Whoever commits
a change publishes its topics after the commit. Publishing fires subscriptions
in this process directly and, through a `Transport`, in every other process
on the same store. A lost wake-up costs at most one safety-net poll
(`config.SAFETY_POLL_S`), never a message: the store is the truth, the
notifier only says "look again".

For SQLite the cross-process transport is a Unix datagram socket per process
(`SocketTransport`): each process binds ``<topic-owner>~<pid>~<rand>.sock`` in a
run directory next to the database, and a publisher sends one datagram to each
socket whose owner the topic concerns. No polling, no filesystem watcher, and a
kernel round trip of a few microseconds.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Protocol

import anyio
import anyio.abc

log = logging.getLogger(__name__)

ALL = "*"


def mail_topic(session_id: str) -> str:
    return f"mail:{session_id}"


# Receipts changing (mail shown, acked) matter only to humans watching: their processes listen as "_all".
RECEIPTS = "receipts"
WATCHERS = "_all"


def topic_owner(topic: str) -> str:
    """The session a topic concerns, WATCHERS for receipts, or ALL for store-wide topics such as ``tasks``."""
    kind, _, owner = topic.partition(":")
    if kind == "mail" and owner:
        return owner
    return WATCHERS if topic == RECEIPTS else ALL


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


def socket_dir_for(db_path: str) -> Path:
    """Where the sockets of a SQLite store live; every process derives the same place.

    Unix socket paths are limited to ~107 bytes, so a deep project falls back
    to a short per-store directory under the system temp dir.
    """
    beside = Path(db_path).parent / "run"
    if len(str(beside)) <= 60:
        return beside
    digest = hashlib.sha256(str(Path(db_path).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"maestro-{os.getuid()}" / digest


class SocketTransport:
    """Unix datagram sockets, one per process, named after the session they serve."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._path: str | None = None
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)

    async def run(
        self, hub: Hub, owner: str, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{owner if owner != ALL else '_all'}~{os.getpid()}~{secrets.token_hex(3)}.sock"
        path = str(self.directory / name)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.bind(path)
            self._path = path
            try:
                task_status.started()
                while True:
                    await anyio.wait_readable(sock)
                    topics: list[str] = []
                    while True:
                        try:
                            data = sock.recv(4096)
                        except BlockingIOError:
                            break
                        topics.extend(data.decode("utf-8", "replace").split("\n"))
                    hub.ring(topics)
            finally:
                self._path = None
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def send(self, topics: Iterable[str]) -> None:
        topics = list(topics)
        owners = {topic_owner(t) for t in topics}
        payload = "\n".join(topics).encode()
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return
        for entry in entries:
            owner = entry.name.split("~", 1)[0]
            if owner != "_all" and owner not in owners and ALL not in owners:
                continue
            if entry.path == self._path:
                continue  # this process's own subscriptions were rung directly
            try:
                self._sender.sendto(payload, entry.path)
            except ConnectionRefusedError:
                # Nobody is bound: the process died without cleaning up. Its socket is litter.
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            except BlockingIOError:
                pass  # the receiver has unread wake-ups queued already; it will look again
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTSOCK, errno.EPROTOTYPE):
                    log.debug("wake-up to %s failed: %s", entry.path, exc)

    def close(self) -> None:
        self._sender.close()


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
