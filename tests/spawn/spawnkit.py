"""Helpers for the spawning tests: a scratch project, coordinators (a real `maestro serve`, or served in
this process), the store as the test sees it, and mail collected until a condition holds.

Spawned workers are real processes. The agents they run live in `agents/` here and are copied into the
project (spawn_worker runs only scripts inside the project). A project launcher whose process only
sleeps stands in for an agent CLI where the test is about spawning, not about the agent.
Every wait is bounded; nothing sleeps to synchronise: waits wake on mail or on store commits.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from harness import Team
from projectkit import user_env
from typer.testing import CliRunner, Result

from maestro_mcp.cli import app
from maestro_mcp.client import AgentClient, ToolCallError, serve_params
from maestro_mcp.config import SAFETY_POLL_S
from maestro_mcp.models import Role, SessionRecord
from maestro_mcp.service import Services
from maestro_mcp.service.sessions import operator_session
from maestro_mcp.service.workers import WorkerService
from maestro_mcp.store import Store
from maestro_mcp.store.notify import ALL

T = TypeVar("T")

AGENTS = Path(__file__).parent / "agents"
# Starting a Python process with maestro costs about a second on a slow machine; calls take milliseconds.
START_S = 20
CALL_S = 10
# A worker is two processes (the agent and its own server): a few seconds from spawn to exit.
WORKER_S = 30

SLEEPER = """
name = "sleeper"
description = "Stands in for an agent CLI that never connects: it only sleeps"
binary = "sleep"
adapter = "script"
manifest_via = "file"
prompt = ""

[headless]
argv = ["{binary}", "300"]
"""


@dataclass
class Project:
    root: Path

    @property
    def db(self) -> str:
        return str(self.root / ".maestro" / "maestro.db")

    def agent(self, script: str) -> str:
        """The `agent` argument that runs tests/spawn/agents/SCRIPT, copied into the project."""
        target = self.root / "agents" / script
        target.parent.mkdir(exist_ok=True)
        shutil.copy(AGENTS / script, target)
        return f"script:agents/{script}"

    def launcher(self, name: str, text: str) -> Path:
        path = self.root / ".maestro" / "launchers" / f"{name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def sleeper(self) -> str:
        self.launcher("sleeper", SLEEPER)
        return "sleeper"

    def git_init(self) -> None:
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        (self.root / "README.md").write_text("a project\n", encoding="utf-8")
        (self.root / ".gitignore").write_text("agents/\n", encoding="utf-8")  # the test's own agents
        start = (["init", "-q", "-b", "main"], ["add", "-A", "--", ".", ":!.maestro"], ["commit", "-q", "-m", "start"])
        for args in start:
            subprocess.run([*git, *args], cwd=self.root, check=True, capture_output=True)

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True, text=True)
        return done.stdout.strip()

    def leftovers(self, name: str) -> list[str]:
        """What a refused spawn of NAME must not leave behind."""
        maestro = self.root / ".maestro"
        paths = [
            maestro / "worktrees" / name,
            maestro / "logs" / f"{name}.log",
            maestro / "manifests" / f"{name}.md",
        ]
        return [str(p) for p in paths if p.exists()]


# -- the store as the test sees it --------------------------------------------------------------


class Watch:
    """The project's store, opened by the test; `until` wakes on every commit of any process."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.services = Services.create(store)

    async def until(self, probe: Callable[[], Awaitable[T | None]], within: float = WORKER_S) -> T:
        """Wait until `probe()` returns something truthy; fail after `within` seconds."""
        with anyio.fail_after(within):
            async with self.store.subscribe(ALL) as bell:
                while True:
                    value = await probe()
                    if value:
                        return value
                    await bell.wait(SAFETY_POLL_S)

    async def session(self, name: str) -> SessionRecord:
        record = await self.store.get_session(name)
        assert record is not None, f"no session {name!r}"
        return record

    async def ended(self, name: str, within: float = WORKER_S) -> SessionRecord:
        async def probe() -> SessionRecord | None:
            record = await self.store.get_session(name)
            return record if record is not None and not record.live else None

        return await self.until(probe, within)

    async def reports(self, name: str) -> list[dict[str, Any]]:
        """The JSON summaries of NAME's reports, oldest first (probe and teammate agents report JSON)."""
        session = await self.session(name)
        out = []
        for r in reversed(await self.store.reports(session_id=session.id, limit=100)):
            with contextlib.suppress(ValueError):
                out.append(json.loads(r.summary))
        return out

    async def report_with(self, name: str, key: str, within: float = WORKER_S) -> dict[str, Any]:
        """NAME's latest JSON report that has `key`, waiting for one if need be."""

        async def probe() -> dict[str, Any] | None:
            if await self.store.get_session(name) is None:
                return None
            found = [r for r in await self.reports(name) if key in r]
            return found[-1] if found else None

        return await self.until(probe, within)

    async def operator(self) -> SessionRecord:
        return await operator_session(self.store)

    async def tell(self, to: str, subject: str, body: str) -> None:
        """Mail a worker as the operator (the probe agent obeys `exit` and `stop`)."""
        await self.services.mail.send(await self.operator(), to, body, subject=subject)

    async def snapshot(self) -> dict[str, Any]:
        """Sessions and tasks as they stand, to show that a refused call changed nothing."""
        return {
            "sessions": [(s.id, s.name, s.status, s.ended_at) for s in await self.store.list_sessions()],
            "tasks": [(t.id, t.status, t.assignee_id) for t in await self.store.list_tasks()],
        }


# -- mail ---------------------------------------------------------------------------------------

EXIT_SUBJECT = re.compile(r"^(?P<name>\S+) (?P<status>exited|failed|stopped)\b")


def exit_events(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Worker name -> the event mail saying it ended."""
    found = {}
    for m in messages:
        match = EXIT_SUBJECT.match(m["subject"])
        if m["type"] == "event" and match and match["name"] == m["sender"]:
            found[m["sender"]] = m
    return found


def report_events(messages: list[dict[str, Any]], kind: str = "complete") -> list[dict[str, Any]]:
    """Event mails about reports (`NAME: complete ...`)."""
    return [m for m in messages if m["type"] == "event" and m["subject"].startswith(f"{m['sender']}: {kind}")]


@dataclass
class Mailbox:
    """Everything one agent has received through mail_wait, collected until a condition holds."""

    client: AgentClient
    messages: list[dict[str, Any]] = field(default_factory=list)

    async def until(self, done: Callable[[list[dict[str, Any]]], bool], within: float = WORKER_S) -> None:
        with anyio.fail_after(within):
            while not done(self.messages):
                self.messages += (await self.client.call("mail_wait", timeout_s=5))["messages"]

    async def exits(self, *names: str, within: float = WORKER_S) -> dict[str, dict[str, Any]]:
        await self.until(lambda ms: set(names) <= set(exit_events(ms)), within)
        return exit_events(self.messages)


async def maestro(project: Project, *args: str) -> Result:
    """Run a `maestro` command on the project's store (in a thread: a command runs its own event loop)."""
    runner = CliRunner()
    return await anyio.to_thread.run_sync(lambda: runner.invoke(app, list(args), env={"MAESTRO_DB": project.db}))


async def maestro_process(project: Project, *args: str) -> tuple[int, str]:
    """Run `maestro ARGS` as its own process in the project (as a human would); exit code and output."""
    env = user_env()
    with anyio.fail_after(WORKER_S * 2):
        done = await anyio.run_process(
            [sys.executable, "-m", "maestro_mcp", *args],
            cwd=project.root,
            env={**env, "MAESTRO_DB": project.db},
            check=False,
            stderr=subprocess.STDOUT,
        )
    return done.returncode, done.stdout.decode(errors="replace")


async def tool_error(client: AgentClient, tool: str, **arguments: Any) -> str:
    """Call a tool that must fail; the error text the model would read."""
    with pytest.raises(ToolCallError) as info:
        await client.call(tool, **arguments)
    return info.value.text


# -- coordinators -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def coordinator_process(
    project: Project,
    name: str | None = "boss",
    *,
    env: Mapping[str, str] | None = None,
    session: str | None = None,
    token: str | None = None,
) -> AsyncIterator[AgentClient]:
    """A coordinator: a real `maestro serve` in the project, registered (or resumed) and ready."""
    params = serve_params(
        db=project.db,
        name=None if session else name,
        session=session,
        token=token,
        cwd=str(project.root),
        env=dict(env or {}),
    )
    async with AgentClient(params, read_timeout_s=START_S) as client:
        with anyio.fail_after(START_S):
            await client.call("whoami")
        yield client


@dataclass
class Crew:
    """A coordinator served in this process (an agent of the in-memory team, harness.py) whose
    WorkerService starts real processes: cheap, for tests about spawning itself."""

    project: Project
    team: Team
    workers: WorkerService
    boss: AgentClient

    @property
    def services(self) -> Services:
        return self.team.services

    @property
    def mailbox(self) -> Mailbox:
        return Mailbox(self.boss)

    async def member(self, name: str, role: Role = Role.worker, parent: str | None = "boss") -> AgentClient:
        """Another agent on the same store, with spawning available (a worker, or a second coordinator)."""
        return (await self.team.agent(name, role, parent, workers=self.workers)).client

    def children(self) -> list[str]:
        """Sessions whose process this coordinator's spawner is watching."""
        return [sid for sid in list(self.workers.spawner._children)]
