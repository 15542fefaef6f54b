"""Per-process server state: the services, and who is calling.

A stdio `maestro serve` acts as exactly one session. With MAESTRO_SESSION and
MAESTRO_TOKEN it resumes that session at start (a wrong token stops it there).
Without them it registers a new session on its first tool call, not at start:
agent CLIs start a throw-away server for every health check, and those must not
leave sessions behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.abc
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from maestro_mcp.errors import MaestroError
from maestro_mcp.launch.spawner import pid_alive
from maestro_mcp.models import Role, SessionRecord, SessionStatus
from maestro_mcp.service import Services
from maestro_mcp.service.workers import WorkerService

log = logging.getLogger(__name__)

TOUCH_EVERY_S = 5.0


class Identity(Protocol):
    """Answers "which session is making this call?"."""

    async def caller(self, ctx: Context[Any, Any]) -> SessionRecord: ...


@dataclass(frozen=True)
class Registration:
    """How a plain `maestro serve` registers itself on its first tool call."""

    name: str | None = None
    role: Role = Role.coordinator
    parent: str | None = None
    agent: str | None = None
    workspace: str | None = None


def client_agent(ctx: Context[Any, Any]) -> str:
    """The agent kind, from the MCP client's own name (claude-code, codex-mcp-client, gemini-cli-…)."""
    try:
        params = ctx.session.client_params
        name = (params.client_info.name if params is not None else "") or ""
    except Exception:  # the in-memory transport has no session params
        name = ""
    lowered = name.lower()
    for kind in ("claude", "codex", "gemini"):
        if kind in lowered:
            return kind
    return "external"


class ProcessIdentity:
    """The one session a stdio server acts as: resumed at start, or registered lazily."""

    def __init__(
        self,
        services: Services,
        task_group: anyio.abc.TaskGroup,
        *,
        session: SessionRecord | None = None,
        registration: Registration | None = None,
    ) -> None:
        self.services = services
        self.task_group = task_group
        self.session = session
        self.registration = registration or Registration()
        self._lock = anyio.Lock()
        self._touched = time.monotonic()

    async def start(self) -> None:
        """Listen for wake-ups of a resumed session right away."""
        if self.session is not None:
            await self.services.store.listen(self.session.id, self.task_group)

    async def caller(self, ctx: Context[Any, Any]) -> SessionRecord:
        if self.session is None:
            async with self._lock:
                if self.session is None:
                    reg = self.registration
                    registered = await self.services.sessions.register(
                        name=reg.name,
                        role=reg.role,
                        agent=reg.agent or client_agent(ctx),
                        parent=reg.parent,
                        workspace=reg.workspace or os.getcwd(),
                        pid=os.getpid(),
                    )
                    await self.services.store.listen(registered.session.id, self.task_group)
                    self.session = registered.session
                    log.info("registered session %s (%s)", registered.session.name, registered.session.id)
        elif time.monotonic() - self._touched > TOUCH_EVERY_S:
            self._touched = time.monotonic()
            await self.services.store.touch_session(self.session.id)
        return self.session

    async def end(self, workers: WorkerService | None = None) -> None:
        """The agent is gone (stdin closed, SIGTERM/SIGINT): end the session, if it ever registered.

        A spawned worker whose spawner is still alive is left to the spawner, which reports the agent's
        exit code. A coordinator first tells (and by default stops) its live workers.
        """
        if self.session is None:
            return
        session = await self.services.store.get_session(self.session.id)
        if session is None or not session.live:
            return
        if session.spawner_pid not in (None, os.getpid()) and pid_alive(session.spawner_pid):
            return
        ended = await self.services.sessions.end(session, SessionStatus.exited, None, "Its server process has stopped.")
        if ended is not None and workers is not None and ended.role is Role.coordinator:
            # Ended first: a worker told of it sees `coordinator_live: false` in whoami at once.
            await workers.on_coordinator_end(ended)


class Runtime:
    """What every tool handler needs: the services and the caller's identity."""

    def __init__(self, services: Services, identity: Identity, workers: WorkerService | None = None) -> None:
        self.services = services
        self.identity = identity
        self.workers = workers

    @contextlib.asynccontextmanager
    async def call(self, ctx: Context[Any, Any]) -> AsyncIterator[SessionRecord]:
        """Resolve the caller and turn expected failures into tool errors the model can act on."""
        try:
            yield await self.identity.caller(ctx)
        except MaestroError as exc:
            raise ToolError(str(exc)) from exc
