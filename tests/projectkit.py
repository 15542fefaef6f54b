"""A project on disk for tests that start real `maestro` processes in it: its folder, its store, the CLI."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import anyio.abc

CLI_S = 60
SERVER_START_S = 30


def new_project(tmp_path: Path) -> Path:
    """A project folder with its `.maestro` (the store is made by the first process that opens it)."""
    root = tmp_path / "project"
    (root / ".maestro").mkdir(parents=True)
    return root


def db_of(project: Path) -> str:
    return str(project / ".maestro" / "maestro.db")


def user_env(db: str | Path | None = None) -> dict[str, str]:
    """The environment a user's shell gives a process: none of this test run's MAESTRO_* settings, and
    `db` as MAESTRO_DB when given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")}
    if db is not None:
        env["MAESTRO_DB"] = str(db)
    return env


def maestro(project: Path, *args: str, db: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`maestro ARGS` in `project`, as a user runs it: none of this test run's MAESTRO_* settings, no stdin."""
    env = user_env(db)
    return subprocess.run(
        [sys.executable, "-m", "maestro_mcp", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@contextlib.asynccontextmanager
async def serving(
    command: list[str], *, env: dict[str, str], cwd: Path, what: str, url_in: Callable[[str], str | None]
) -> AsyncIterator[tuple[str, anyio.abc.Process, list[str]]]:
    """A server process (`maestro dashboard`, `maestro serve --http`) from the moment a line of its stderr
    gives its URL (`url_in(line)`) until the block ends: (url, process, its stderr lines so far). Then
    SIGTERM, and it must exit 0 promptly."""
    async with await anyio.open_process(command, env=env, cwd=cwd) as process:
        lines: list[str] = []
        urls: list[str] = []
        ready = anyio.Event()

        async def drain(stream: anyio.abc.ByteReceiveStream) -> None:
            buffer = b""
            async for chunk in stream:
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    lines.append(line.decode(errors="replace"))
                    if not urls and (url := url_in(lines[-1])):
                        urls.append(url)
                        ready.set()

        async with anyio.create_task_group() as tg:
            assert process.stderr is not None
            tg.start_soon(drain, process.stderr)
            try:
                with anyio.fail_after(SERVER_START_S):
                    await ready.wait()
            except TimeoutError:
                raise AssertionError(f"{what} did not start:\n" + "\n".join(lines)) from None
            try:
                yield urls[0], process, lines
            finally:
                process.terminate()
                with anyio.fail_after(SERVER_START_S):
                    code = await process.wait()
                tg.cancel_scope.cancel()
        assert code == 0, f"{what} did not exit cleanly:\n" + "\n".join(lines)
