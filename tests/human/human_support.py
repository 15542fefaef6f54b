"""Helpers for the human-side tests: `maestro` run as a person runs it, and an independent look at a store.

`maestro(...)` invokes the typer app in-process (typer's CliRunner) and returns exit code, stdout and
stderr. Async tests call `await amaestro(...)`, which runs it on a worker thread: every command starts
its own event loop with `anyio.run`, which cannot nest inside the test's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
from typer.testing import CliRunner

from maestro_mcp.cli import app
from maestro_mcp.cli.common import services_at
from maestro_mcp.service import Services

ENV = ("MAESTRO_DB", "MAESTRO_SESSION", "MAESTRO_TOKEN")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


def maestro(*args: str) -> Result:
    """Run one `maestro` command in-process; an unexpected exception fails the test with its own traceback."""
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Result(result.exit_code, result.stdout, result.stderr)


async def amaestro(*args: str) -> Result:
    return await anyio.to_thread.run_sync(lambda: maestro(*args))


def opened(db: Path | str) -> contextlib.AbstractAsyncContextManager[Services]:
    """The services over a store file, opened independently of the CLI under test."""
    return services_at(str(db))


def poll_until(condition: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    """For a condition no event announces (a file another process creates): check it until true or
    `timeout`; returns whether it became true. Never used to let time pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True
