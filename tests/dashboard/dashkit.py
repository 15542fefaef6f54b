"""What the dashboard's tests share: a real `maestro dashboard` process, a real browser, a real demo store.

The browser is Debian's chromium driven by Playwright (never a browser Playwright downloads);
every page a test opens fails the test on any console error or uncaught exception.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from playwright.async_api import Browser, ConsoleMessage, Error, Page, async_playwright
from projectkit import serving, user_env

from maestro_mcp.service import Services
from maestro_mcp.store import ALL, create_store

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_TIMEOUT_S = 120
SERVING = re.compile(r"maestro dashboard: serving .* at (http://\S+)")


@dataclass
class Running:
    url: str
    process: anyio.abc.Process
    stderr: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])


@contextlib.asynccontextmanager
async def dashboard(db: str, *args: str, cwd: Path | None = None) -> AsyncIterator[Running]:
    """`maestro dashboard --port 0 ARGS` over the store `db` (a SQLite file in a project, or a URL with
    `cwd`), until the block ends; then SIGTERM, and it must exit 0 promptly even with pages connected."""
    command = [sys.executable, "-m", "maestro_mcp", "dashboard", "--port", "0", *args]

    def url_in(line: str) -> str | None:
        match = SERVING.search(line)
        return match[1] if match else None

    async with serving(
        command, env=user_env(db), cwd=cwd or Path(db).parents[1], what="the dashboard", url_in=url_in
    ) as (url, process, lines):
        yield Running(url, process, lines)


@contextlib.asynccontextmanager
async def opened(db: str) -> AsyncIterator[Services]:
    """The store, opened in this process and hearing the other processes' wake-ups."""
    store = create_store(db)
    await store.open()
    try:
        async with anyio.create_task_group() as tg:
            await store.listen(ALL, tg)
            yield Services.create(store)
            tg.cancel_scope.cancel()
    finally:
        await store.close()


def require_chromium() -> None:
    """Fail (never skip) without the browser, saying how to install it."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: `apt-get install -y chromium chromium-driver` (.ci/run installs it).",
            pytrace=False,
        )


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Watched:
    """A page, and every console error or uncaught exception it produced."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert not self.problems, "the page logged errors:\n" + "\n".join(self.problems)


@contextlib.asynccontextmanager
async def watched_page(b: Browser, **context: Any) -> AsyncIterator[Watched]:
    ctx = await b.new_context(**context)
    page = await ctx.new_page()
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.problems.append(f"console: {message.text}")

    def on_error(error: Error) -> None:
        watched.problems.append(f"exception: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_error)
    try:
        yield watched
    finally:
        await ctx.close()
    watched.check()


def run_demo() -> tuple[Path, str]:
    """`maestro demo`, run as a newcomer runs it: its workspace and its store."""
    env = user_env()
    proc = subprocess.run(
        [sys.executable, "-m", "maestro_mcp", "demo"],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, f"the demo failed:\n{proc.stdout}\n{proc.stderr}"
    found = dict(re.findall(r"^  (workspace|store):\s+(.*)$", proc.stdout, re.MULTILINE))
    return Path(found["workspace"]), found["store"]
