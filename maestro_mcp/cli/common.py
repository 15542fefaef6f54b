"""What every human command needs: the store, the services, and the operator's session."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import anyio

from maestro_mcp.cli.app import fail
from maestro_mcp.config import store_location
from maestro_mcp.errors import MaestroError, StoreError
from maestro_mcp.models import Role, SessionRecord, SessionStatus
from maestro_mcp.service import Services
from maestro_mcp.store import create_store

T = TypeVar("T")

OPERATOR = "operator"


@contextlib.asynccontextmanager
async def services(create: bool = False, scratch_if_missing: bool = False) -> AsyncIterator[Services]:
    """The project's store, opened; without `create`, a missing store is an error saying how to make one.

    `scratch_if_missing` opens a throw-away store instead (for previews such as `tasks import --dry-run`).
    """
    try:
        location = store_location(create=create)
    except StoreError:
        if not scratch_if_missing:
            raise
        with tempfile.TemporaryDirectory() as tmp:
            async with services_at(str(Path(tmp) / "scratch.db")) as svc:
                yield svc
        return
    async with services_at(location) as svc:
        yield svc


@contextlib.asynccontextmanager
async def services_at(location: str) -> AsyncIterator[Services]:
    store = create_store(location)
    try:
        await store.open()
        yield Services.create(store)
    finally:
        await store.close()


async def operator(svc: Services) -> SessionRecord:
    """The human's own session: humans send mail and create tasks as `operator`."""
    existing = await svc.store.get_session(OPERATOR)
    if existing is not None:
        return existing
    try:
        return (
            await svc.sessions.register(name=OPERATOR, role=Role.operator, agent="human", status=SessionStatus.idle)
        ).session
    except MaestroError:
        # Another command registered it at the same moment.
        again = await svc.store.get_session(OPERATOR)
        if again is None:
            raise
        return again


INTERRUPTED = "interrupted; every change is a whole transaction, so the store is consistent."


def _unwrap(exc: BaseException) -> BaseException:
    """The one error a task group wrapped (commands that start one, like `stop`, get it wrapped)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def run(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a command body; expected failures become one clear line on stderr and exit code 1."""
    try:
        return anyio.run(fn)
    except MaestroError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail(INTERRUPTED, 130) from None
    except BaseExceptionGroup as group:
        inner = _unwrap(group)
        if isinstance(inner, MaestroError):
            raise fail(str(inner)) from None
        if isinstance(inner, KeyboardInterrupt) or group.subgroup(KeyboardInterrupt) is not None:
            raise fail(INTERRUPTED, 130) from None
        raise
