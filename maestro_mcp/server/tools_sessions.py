"""Tools about who is here: whoami (you, your coordinator, your siblings) and list_sessions (everyone).

Siblings are listed in one place only, whoami: a second tool saying the same cost every agent its
schema in every request.
"""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from maestro_mcp.models import Role, SessionStatus

from .results import Sessions, WhoAmI
from .runtime import Runtime
from .toolkit import ToolSet

RoleName = Literal["coordinator", "worker", "operator"]
StatusName = Literal["spawning", "working", "idle", "blocked", "needs_input", "done", "failed", "exited", "stopped"]


def register(tools: ToolSet, rt: Runtime) -> None:
    services = rt.services

    @tools.tool(read_only=True)
    async def whoami(ctx: Context[Any, Any]) -> WhoAmI:
        """You: role, coordinator, siblings, open tasks, operator directives. Call it first, and
        whenever unsure what to do."""
        async with rt.call(ctx) as me:
            # `me` is this server's own record: what whoami shows of it (name, role, agent, parent, directive)
            # is fixed when the session is registered, so it is not read again. Everything else is, in one read.
            around = await services.store.overview(me)
            parent, coordinator = around.parent, around.coordinator
            return WhoAmI(
                session_id=me.id,
                name=me.name,
                role=me.role.value,
                agent=me.agent,
                parent=parent.name if parent else None,
                coordinator=coordinator.name if coordinator else None,
                coordinator_live=(
                    services.activity.coordinator_responsive(coordinator, rt.stall_after_s()) if coordinator else None
                ),
                siblings=[services.sessions.info(s, parent.name if parent else None) for s in around.siblings],
                tasks=await services.tasks.views(around.tasks, me),
                directive=me.directive,
                directives=around.directives,
                team_spend_usd=None if around.team_spend_usd is None else round(around.team_spend_usd, 4),
                unread=around.unread,
            )

    @tools.tool(read_only=True)
    async def list_sessions(
        ctx: Context[Any, Any],
        role: Annotated[RoleName | None, Field(description="Only this role.")] = None,
        status: Annotated[StatusName | None, Field(description="Only this status.")] = None,
    ) -> Sessions:
        """Every session of the project with live status: names to mail."""
        async with rt.call(ctx) as me:
            sessions = await services.sessions.list_infos(
                Role(role) if role else None, SessionStatus(status) if status else None
            )
            return Sessions(sessions=sessions, unread=await services.mail.unread(me))
