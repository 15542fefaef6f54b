"""What every human command needs: the store, the services, and the operator's session."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import anyio
import typer
from rich.console import Console
from rich.table import Table

from maestro_mcp.cli.app import fail
from maestro_mcp.config import project_root_for, store_location
from maestro_mcp.errors import MaestroError, StoreError
from maestro_mcp.models import SessionRecord
from maestro_mcp.service import Services
from maestro_mcp.service.sessions import operator_session
from maestro_mcp.service.workers import WorkerService
from maestro_mcp.store import create_store

T = TypeVar("T")


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


@contextlib.asynccontextmanager
async def workers() -> AsyncIterator[tuple[Services, WorkerService]]:
    """The project's services and a WorkerService for one command (`stop`, `respawn`): what it starts
    outlives the command, and the relay of a worker it started ends its session when it exits."""
    location = store_location(create=False)
    async with services() as svc, anyio.create_task_group() as tg:
        yield (
            svc,
            WorkerService(
                svc.store, svc.sessions, svc.mail, svc.tasks, tg, project_root=project_root_for(location), db=location
            ),
        )
        tg.cancel_scope.cancel()


async def operator(svc: Services) -> SessionRecord:
    """The human's own session: humans send mail and create tasks as `operator`."""
    return await operator_session(svc.store)


INTERRUPTED = "interrupted; every change is a whole transaction, so the store is consistent."


def _unwrap(exc: BaseException) -> BaseException:
    """The one error a task group wrapped (commands that start one, like `stop`, get it wrapped)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def run(fn: Callable[[], Awaitable[T]], interrupted: str = INTERRUPTED) -> T:
    """Run a command body; expected failures become one clear line on stderr and exit code 1.

    `interrupted` is what Ctrl-C prints (a command that changes nothing says so, not "transactions")."""
    try:
        return anyio.run(fn)
    except MaestroError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail(interrupted, 130) from None
    except BaseExceptionGroup as group:
        inner = _unwrap(group)
        if isinstance(inner, MaestroError):
            raise fail(str(inner)) from None
        if isinstance(inner, KeyboardInterrupt) or group.subgroup(KeyboardInterrupt) is not None:
            raise fail(interrupted, 130) from None
        raise


def on_terminal() -> bool:
    return sys.stdout.isatty()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, full: bool = False) -> None:
    """A table for people: on a terminal fitted to its width (long cells cut with an ellipsis); piped, or
    with `full`, every cell whole, tab-separated, so ids can be copied and scripts can cut columns."""
    if full or not on_terminal():
        for row in [headers, *rows]:
            typer.echo("\t".join(row))
        return
    table = Table(*headers, box=None)
    for column in table.columns:
        column.overflow = "ellipsis"
        column.no_wrap = True
    for row in rows:
        table.add_row(*row)
    Console().print(table)
