"""Worker tools: spawn_worker, respawn_worker, stop_worker."""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from maestro_mcp.errors import Forbidden
from maestro_mcp.models import SessionRecord
from maestro_mcp.service.workers import Spawned as WorkerSpawned

from .results import Spawned, Stopped
from .runtime import Runtime
from .toolkit import COORDINATORS, ToolSet


def register(tools: ToolSet, rt: Runtime) -> None:
    services = rt.services

    def workers(tool: str) -> Any:
        if rt.workers is not None:
            return rt.workers
        # `maestro serve --http` serves agents on other machines: it neither starts nor signals programs
        # on its own machine on their behalf.
        if tool in ("spawn_worker", "respawn_worker"):
            raise Forbidden(
                f"{tool} is refused over `maestro serve --http`: it would start a program on the server's"
                " machine for a remote agent.",
                "Spawn from a coordinator whose own stdio `maestro serve` runs where the worker should run.",
            )
        raise Forbidden(
            "stop_worker is refused over `maestro serve --http`: the worker's process is watched by the stdio"
            " server of the coordinator that spawned it, and this server signals no process.",
            "Stop it from that coordinator, or with `maestro stop NAME` on the worker's machine.",
        )

    @tools.tool(roles=COORDINATORS)
    async def spawn_worker(
        ctx: Context[Any, Any],
        agent: Annotated[
            str, Field(description="claude, codex, gemini, script:path/to/agent.py, or a project launcher.")
        ],
        directive: Annotated[str, Field(description="What it is for; it reads this first.")],
        task_ids: Annotated[list[str] | None, Field(description="Tasks reserved for it.")] = None,
        name: Annotated[str | None, Field(description="Unique name; generated if left out.")] = None,
        isolation: Annotated[
            Literal["shared", "worktree"], Field(description="worktree: its own git worktree and branch.")
        ] = "shared",
        model: Annotated[str | None, Field(description="Model, if not the CLI's default.")] = None,
        profile: Annotated[str | None, Field(description="Role profile: dev, review, test, or the project's.")] = None,
        budget_usd: Annotated[float | None, Field(description="Stop it at this spend.")] = None,
        max_turns: Annotated[int | None, Field(description="Stop it after this many turns.")] = None,
    ) -> Spawned:
        """Start a headless worker with its own maestro server and a manifest (your directive, its
        tasks). Returns at once; its reports and exit arrive by mail_wait."""
        async with rt.call(ctx) as me:
            spawned = await workers("spawn_worker").spawn(
                me,
                agent=agent,
                directive=directive,
                task_ids=task_ids or [],
                name=name,
                isolation=isolation,
                model=model,
                profile=profile,
                budget_usd=budget_usd,
                max_turns=max_turns,
            )
            return await result(me, spawned)

    async def result(me: SessionRecord, spawned: WorkerSpawned) -> Spawned:
        return Spawned(
            session_id=spawned.session.id,
            name=spawned.session.name,
            status=spawned.session.status.value,
            pid=spawned.pid,
            log_path=spawned.log_path,
            unread=await services.mail.unread(me),
        )

    @tools.tool(roles=COORDINATORS)
    async def respawn_worker(
        ctx: Context[Any, Any],
        session_id: Annotated[str, Field(description="The ended worker's id or name.")],
        directive: Annotated[str, Field(description="What to tell it first.")] = "",
        budget_usd: Annotated[float | None, Field(description="A new budget.")] = None,
    ) -> Spawned:
        """Start an ended worker again: same name and mailbox, its conversation resumed where its
        CLI can, its unclaimed tasks back."""
        async with rt.call(ctx) as me:
            return await result(me, await workers("respawn_worker").respawn(me, session_id, directive, budget_usd))

    @tools.tool(roles=COORDINATORS, destructive=True)
    async def stop_worker(
        ctx: Context[Any, Any],
        session_id: Annotated[str, Field(description="The worker's session id or name.")],
        reason: Annotated[str, Field(description="Why; it reads this in a critical mail.")] = "",
        grace_s: Annotated[float, Field(description="Seconds before SIGTERM (0-600).")] = 10,
    ) -> Stopped:
        """Stop a worker: critical mail with the reason, SIGTERM after grace_s, then SIGKILL. Its
        unfinished tasks go back to ready."""
        async with rt.call(ctx) as me:
            record = await workers("stop_worker").stop(me, session_id, reason, grace_s)
            return Stopped(session_id=record.id, status=record.status.value, unread=await services.mail.unread(me))
