"""What the parts of `PostgresStore` share: the write transaction, and the two ways to run SQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .postgres_notify import payloads

T = TypeVar("T")


class Tx:
    """One write transaction: its connection, and the topics it will publish on commit."""

    __slots__ = ("channel", "conn", "origin", "topics")

    def __init__(self, conn: Any, channel: str, origin: str) -> None:
        self.conn = conn
        self.channel = channel
        self.origin = origin
        self.topics: list[str] = []

    async def notify(self, topics: Sequence[str]) -> None:
        """NOTIFY inside the transaction: other processes hear it when (and only if) it commits."""
        for payload in payloads(self.origin, topics):
            await self.conn.execute("SELECT pg_notify($1, $2)", self.channel, payload)
        self.topics.extend(topics)


class PgOps:
    """Declares what `PostgresStore` provides to its mixins (mail, tasks, snapshots)."""

    if TYPE_CHECKING:  # `PostgresStore` defines them; the mixins only need their types

        async def _write(self, fn: Callable[[Tx], Awaitable[T]], *, idempotent: bool = False) -> T:
            """Run `fn` as one transaction (see `PostgresStore._write`)."""

        async def _read(self, fn: Callable[[Any], Awaitable[T]], *, snapshot: bool = False) -> T:
            """Run `fn` on a pooled connection (see `PostgresStore._read`)."""
