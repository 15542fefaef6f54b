"""Transactions as steps: each rule is written once, as a generator that yields what to run.

A step yields an operation and receives its result::

    def end_session(session_id: str, ...) -> Step[SessionRecord | None]:
        row = yield END_SESSION.one(session_id=session_id, ...)
        if row is None:
            return None
        yield Wake(("sessions",))
        return rows.session(row)

Steps compose with ``yield from``. They know no driver: an executor runs a whole
step as one transaction, synchronously on SQLite's connection thread (one thread
hop per transaction) or with ``await`` on asyncpg. A statement the database
refuses (a unique key, a missing reference, a value of the wrong type) is thrown
back into the step as `Refused`, so a rule can turn it into an error that says
what to do. Executors may run a step more than once (PostgreSQL retries after a
lost connection), so a step is made fresh for every attempt by a `Transaction`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from maestro_mcp.errors import StoreError

from .sql import Query

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Wake:
    """Ring these topics once the transaction commits (in this process and in every other)."""

    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Lock:
    """Serialise transactions that take this lock, across processes, until they commit.

    SQLite's write transactions are serialised already; PostgreSQL takes an advisory lock."""

    name: str


Op = Query | Wake | Lock
Step = Generator[Op, Any, T]
Transaction = Callable[[], Step[T]]
"""Makes the step of one attempt: executors call it again to retry."""


class Refused(StoreError):
    """The database refused a statement: `kind` says why, `what` names the table.column or constraint."""

    def __init__(self, kind: Literal["unique", "foreign_key", "value"], what: str, detail: str) -> None:
        super().__init__(f"The store refused the change ({kind} {what}): {detail}.")
        self.kind = kind
        self.what = what
        self.detail = detail


def drive(step: Step[T], run: Callable[[Op], Any]) -> T:
    """Run `step` to its end, answering each operation with `run(op)`."""
    value: Any = None
    error: Refused | None = None
    while True:
        try:
            op = step.send(value) if error is None else step.throw(error)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        try:
            value, error = run(op), None
        except Refused as exc:
            value, error = None, exc


async def drive_async(step: Step[T], run: Callable[[Op], Awaitable[Any]]) -> T:
    """`drive` for executors whose driver is awaited."""
    value: Any = None
    error: Refused | None = None
    while True:
        try:
            op = step.send(value) if error is None else step.throw(error)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        try:
            value, error = await run(op), None
        except Refused as exc:
            value, error = None, exc
