"""Worker tools: spawn_worker, stop_worker."""

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import Field

from maestro_mcp.errors import MaestroError

from .results import Spawned, Stopped
from .runtime import Runtime


def register(mcp: MCPServer[Any], rt: Runtime) -> None:
    services = rt.services

    def workers() -> Any:
        if rt.workers is None:
            raise MaestroError(
                "This server cannot start processes.", "Spawn workers from a stdio `maestro serve` on the machine."
            )
        return rt.workers

    @mcp.tool()
    async def spawn_worker(
        ctx: Context[Any, Any],
        agent: Annotated[
            str,
            Field(description="claude | codex | gemini | script (or script:path/to/agent.py) | a project launcher."),
        ],
        directive: Annotated[str, Field(description="What this worker is for; it reads it first.")],
        task_ids: Annotated[list[str] | None, Field(description="Tasks reserved for this worker.")] = None,
        name: Annotated[str | None, Field(description="Worker name (unique); generated if omitted.")] = None,
        isolation: Annotated[
            Literal["shared", "worktree"],
            Field(description="shared: work in the project; worktree: own git worktree and branch."),
        ] = "shared",
        model: Annotated[str | None, Field(description="Model for the agent CLI, if not its default.")] = None,
        profile: Annotated[
            str | None, Field(description="Role profile: dev, review, test, or a project's own.")
        ] = None,
    ) -> Spawned:
        """Start a worker agent (coordinators only). It gets its own maestro server, a manifest with your
        directive and its tasks, and runs headless. Returns at once; its reports and its exit reach you as
        mail (mail_wait)."""
        async with rt.call(ctx) as me:
            spawned = await workers().spawn(
                me,
                agent=agent,
                directive=directive,
                task_ids=task_ids or [],
                name=name,
                isolation=isolation,
                model=model,
                profile=profile,
            )
            return Spawned(
                session_id=spawned.session.id,
                name=spawned.session.name,
                status=spawned.session.status.value,
                pid=spawned.pid,
                log_path=spawned.log_path,
                unread=await services.mail.unread(me),
            )

    @mcp.tool()
    async def stop_worker(
        ctx: Context[Any, Any],
        session_id: Annotated[str, Field(description="The worker's session id or name.")],
        reason: Annotated[str, Field(description="Why; the worker reads it in a critical mail.")] = "",
        grace_s: Annotated[float, Field(description="Seconds to finish before SIGTERM (0-600).")] = 10,
    ) -> Stopped:
        """Stop a worker: a critical mail with the reason, then SIGTERM after the grace period, then SIGKILL.
        Its unfinished tasks go back to ready."""
        async with rt.call(ctx) as me:
            record = await workers().stop(me, session_id, reason, grace_s)
            return Stopped(session_id=record.id, status=record.status.value, unread=await services.mail.unread(me))
