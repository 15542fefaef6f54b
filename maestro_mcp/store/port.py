"""The port a backend implements: an executor that runs transactions of steps, with its dialect
and its wake-up transport.

Everything else (the statements, the task rules, what each method wakes) is shared
and lives beside the `Store` methods in `sessions`, `mail`, `tasks` and `operator`.
A new backend is three files (its executor, its `sql.Dialect`, its `notify.Transport`)
plus its tests: run the contract suite in tests/store against it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Protocol, TypeVar

import anyio.abc

from .notify import Subscription
from .sql import Dialect
from .steps import Transaction

T = TypeVar("T")


class Executor(Protocol):
    dialect: Dialect
    location: str
    """Path or URL (password redacted), for messages."""

    async def open(self) -> None:
        """Connect, and create or migrate the schema (`schema.migrate`) safely when processes race."""

    async def close(self) -> None: ...

    async def read(self, tx: Transaction[T], *, snapshot: bool = False) -> T:
        """Run a read-only step; with `snapshot`, all its statements see one consistent state."""

    async def write(self, tx: Transaction[T], *, idempotent: bool = False) -> T:
        """Run a step as one write transaction: committed whole or not at all, even when the caller is
        cancelled; then ring the topics it yielded (`Wake`), here and in every other process.
        `idempotent`: running it twice does no harm, so a retry after a lost COMMIT is safe."""

    def subscribe(self, topic: str) -> contextlib.AbstractAsyncContextManager[Subscription]: ...

    async def wake(self, topics: Sequence[str]) -> None:
        """Ring topics everywhere without writing anything."""

    async def listen(self, owner: str, task_group: anyio.abc.TaskGroup) -> None:
        """Hear other processes' wake-ups for `owner` (a session id or "*") from now on."""

    async def health(self) -> dict[str, str]:
        """`backend`, `integrity` ("ok" or the problems), `notifier` and `notifier_fix`, and facts of
        the backend's own, for `maestro doctor`."""
