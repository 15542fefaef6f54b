"""Per-process server state: the services, and who is calling.

A stdio `maestro serve` acts as exactly one session. With MAESTRO_SESSION and
MAESTRO_TOKEN it resumes that session at start (a wrong token stops it there).
Without them it registers a new session on its first tool call, not at start:
agent CLIs start a throw-away server for every health check, and those must not
leave sessions behind. With `--name X` of a session that has ended, that first
call takes X over instead: the same session, its mailbox, the mail that waited.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.abc
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from maestro_mcp import project_config
from maestro_mcp.errors import MaestroError
from maestro_mcp.launch.spawner import pid_alive
from maestro_mcp.models import Role, SessionRecord, SessionStatus
from maestro_mcp.project_config import STALL_AFTER_S
from maestro_mcp.service import Services
from maestro_mcp.service.workers import WorkerService

log = logging.getLogger(__name__)

TOUCH_EVERY_S = 5.0


class Identity(Protocol):
    """Answers "which session is making this call?"."""

    async def caller(self, ctx: Context[Any, Any]) -> SessionRecord: ...

    def listed_role(self, request: Any) -> Role:
        """The role whose tools `tools/list` shows, before a first tool call has registered anyone."""
        ...


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
        on_take_over: Callable[[SessionRecord], Awaitable[None]] | None = None,
    ) -> None:
        self.services = services
        self.task_group = task_group
        self.session = session
        self.registration = registration or Registration()
        self.on_take_over = on_take_over
        """Run for a coordinator taken over (it adopts the workers its earlier process started)."""
        self._lock = anyio.Lock()
        self._touched = time.monotonic()

    def listed_role(self, request: Any) -> Role:
        # Before registration, the role it will register with (`maestro serve --role`).
        return self.session.role if self.session is not None else self.registration.role

    async def start(self) -> None:
        """Listen for wake-ups of a resumed session right away."""
        if self.session is not None:
            await self.services.liveness.beat(self.session.id)
            await self.services.store.listen(self.session.id, self.task_group)

    async def caller(self, ctx: Context[Any, Any]) -> SessionRecord:
        if self.session is None:
            async with self._lock:
                if self.session is None:
                    listed = self.listed_role(None)
                    session = await self._register(ctx)
                    # Its host and first heartbeat at once: a kill right after this is noticed too.
                    await self.services.liveness.beat(session.id)
                    await self.services.store.listen(session.id, self.task_group)
                    self.session = session
                    log.info("registered session %s (%s)", session.name, session.id)
                    if session.role is not listed:
                        # tools/list showed the tools of another role (a name taken over since start).
                        await _tools_changed(ctx)
        elif time.monotonic() - self._touched > TOUCH_EVERY_S:
            self._touched = time.monotonic()
            await self.services.store.touch_session(self.session.id)
        return self.session

    async def _register(self, ctx: Context[Any, Any]) -> SessionRecord:
        reg = self.registration
        sessions = self.services.sessions
        if reg.name is not None:
            taken = await sessions.take_over(reg.name, parent=reg.parent, pid=os.getpid())
            if taken is not None:
                if taken.role is Role.coordinator and self.on_take_over is not None:
                    await self.on_take_over(taken)
                return taken
        registered = await sessions.register(
            name=reg.name,
            role=reg.role,
            agent=reg.agent or client_agent(ctx),
            parent=reg.parent,
            workspace=reg.workspace or os.getcwd(),
            pid=os.getpid(),
        )
        return registered.session

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


async def _tools_changed(ctx: Context[Any, Any]) -> None:
    """Tell the client to list the tools again: on `subscriptions/listen` streams (protocol 2026-07-28)
    and as the handshake era's notification (the agent CLIs' protocol versions)."""
    for announce in (ctx.notify_tools_changed, ctx.session.send_tool_list_changed):
        try:
            await announce()
        except Exception as exc:  # a client already gone, or one that does not take it: it lists again anyway
            log.info("could not announce the changed tool list: %s", exc)


class Runtime:
    """What every tool handler needs: the services and the caller's identity."""

    def __init__(
        self,
        services: Services,
        identity: Identity,
        workers: WorkerService | None = None,
        *,
        project_root: Path | None = None,
        permission_cli: str = "",
    ) -> None:
        self.services = services
        self.identity = identity
        self.workers = workers
        self.project_root = project_root
        self.permission_cli = permission_cli
        """The agent CLI that asks this server for permission decisions (Claude's --permission-prompt-tool)."""
        self._stall_after_s: float | None = None

    def stall_after_s(self) -> float:
        """The project's silence limit (.maestro/config.toml), read once per server; a file with a mistake
        counts as the default here, since whoami must answer (spawn_worker reports the mistake)."""
        if self._stall_after_s is None:
            try:
                found = project_config.load(self.project_root).stall_after_s if self.project_root else STALL_AFTER_S
            except MaestroError:
                found = STALL_AFTER_S
            self._stall_after_s = found
        return self._stall_after_s

    @contextlib.asynccontextmanager
    async def call(self, ctx: Context[Any, Any]) -> AsyncIterator[SessionRecord]:
        """Resolve the caller and turn expected failures into tool errors the model can act on."""
        try:
            yield await self.identity.caller(ctx)
        except MaestroError as exc:
            raise ToolError(str(exc)) from exc

    async def require_role(self, ctx: Context[Any, Any], tool: str, roles: frozenset[Role]) -> None:
        """Refuse a tool the caller's role does not list (it may still call it by name)."""
        async with self.call(ctx) as me:
            if me.role not in roles:
                allowed = " and ".join(sorted(f"{r.value}s" for r in roles))
                raise ToolError(
                    f"{tool} is for {allowed}; you ({me.name}) are a {me.role.value}."
                    " Ask your coordinator instead: mail_send(to='coordinator', body=...)."
                )
