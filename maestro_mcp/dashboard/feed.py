"""Live updates: the store's notifier rings, the sections are rendered once, each open page gets what changed.

One `Broadcaster` per server process subscribes to every topic of the store (the same wake-ups
agents' servers use, from every process of the project). When it rings, each page kind that is
open (the board, or one worker's page) is read and rendered once, and each client of that page
is offered the sections whose HTML differs from what it already has. A client that is slow to
read never makes the others wait: it only ever holds the newest version of each section.
Nothing polls: `refresh_s` only re-reads now and then in case a wake-up was lost.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio

from maestro_mcp import wakes
from maestro_mcp.errors import MaestroError
from maestro_mcp.models import ThreadMessage, now, parse_iso
from maestro_mcp.service import Services
from maestro_mcp.store import ALL

from .board import board, worker_page
from .render import Section, board_sections, worker_sections

log = logging.getLogger(__name__)

BOARD = "board"
WORKER = "worker:"


def parse_versions(text: str) -> dict[str, str]:
    """`name:version,...` as the page sends it (what it was rendered with)."""
    found = {}
    for item in text.split(","):
        name, _, version = item.partition(":")
        if name and version:
            found[name] = version
    return found


class Client:
    """One open page: the newest version of each section it has not been sent yet."""

    def __init__(self, have: dict[str, str]) -> None:
        self.versions = dict(have)
        self.pending: dict[str, Section] = {}
        self._bell = anyio.Event()

    def offer(self, sections: dict[str, Section]) -> None:
        for name, section in sections.items():
            if self.versions.get(name) != section.version:
                self.versions[name] = section.version
                self.pending[name] = section
        if self.pending:
            self._bell.set()

    async def next(self, timeout_s: float) -> list[Section]:
        """The sections that changed since the last call (empty after `timeout_s` without a change)."""
        with anyio.move_on_after(timeout_s):
            await self._bell.wait()
        self._bell = anyio.Event()
        out, self.pending = list(self.pending.values()), {}
        return out


@dataclass
class Feed:
    clients: set[Client] = field(default_factory=set)


class Broadcaster:
    def __init__(self, svc: Services, *, pace_s: float = 0.02, refresh_s: float = 30.0) -> None:
        self.svc = svc
        self.pace_s = pace_s
        self.refresh_s = refresh_s
        self.feeds: dict[str, Feed] = {}
        self._seen: set[str] | None = None
        self.renders = 0

    async def render(self, key: str) -> dict[str, Section]:
        self.renders += 1
        if key == BOARD:
            current = await board(self.svc)
            self._observe(current.status.messages)
            return board_sections(current)
        page = await worker_page(self.svc, key.removeprefix(WORKER))
        return worker_sections(page) if page is not None else {}

    def _observe(self, messages: list[ThreadMessage]) -> None:
        """Wake latency of the dashboard: commit of a message to the moment it is pushed to the pages."""
        ids = {m.message_id for m in messages}
        if self._seen is not None and wakes.observing():
            at = now()
            for m in messages:
                if m.message_id not in self._seen:
                    wakes.observe("dashboard", at - parse_iso(m.created_at))
        self._seen = ids

    async def run(self) -> None:
        """Re-render the open pages after every change in the store, until cancelled."""
        async with self.svc.store.subscribe(ALL) as bell:
            while True:
                await bell.wait(self.refresh_s)
                await anyio.sleep(self.pace_s)  # a burst of commits (a send rings several topics) is one update
                for key, feed in list(self.feeds.items()):
                    if not feed.clients:
                        continue
                    try:
                        sections = await self.render(key)
                    except MaestroError as exc:  # a store hiccup: the next ring (or refresh) tries again
                        log.warning("dashboard: could not read the store: %s", exc)
                        continue
                    for client in list(feed.clients):
                        client.offer(sections)

    @contextlib.asynccontextmanager
    async def join(self, key: str, have: dict[str, str]) -> AsyncIterator[Client]:
        """A page opens its event stream; it is first offered what changed since it was rendered."""
        feed = self.feeds.setdefault(key, Feed())
        client = Client(have)
        feed.clients.add(client)
        try:
            try:
                client.offer(await self.render(key))
            except MaestroError as exc:  # the store is down for a moment: the next ring sends everything
                log.warning("dashboard: could not read the store: %s", exc)
            yield client
        finally:
            feed.clients.discard(client)
            if not feed.clients and self.feeds.get(key) is feed:
                del self.feeds[key]
