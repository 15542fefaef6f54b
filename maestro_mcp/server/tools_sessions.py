"""Tools about who is here: whoami, list_sessions, list_siblings."""

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import Field

from maestro_mcp.models import Role, SessionStatus, TaskStatus

from .results import Sessions, WhoAmI
from .runtime import Runtime

RoleName = Literal["coordinator", "worker", "operator"]
StatusName = Literal["spawning", "working", "idle", "blocked", "needs_input", "done", "failed", "exited", "stopped"]

FINISHED = (TaskStatus.done, TaskStatus.cancelled, TaskStatus.failed)


def register(mcp: MCPServer[Any], rt: Runtime) -> None:
    services = rt.services

    @mcp.tool()
    async def whoami(ctx: Context[Any, Any]) -> WhoAmI:
        """Who you are in this team: your session, role, coordinator, siblings, assigned tasks and the
        operator's active directives. Call it first, and again whenever you are unsure what to do."""
        async with rt.call(ctx) as me:
            # `me` is this server's own record: what whoami shows of it (name, role, agent, parent, directive)
            # is fixed when the session is registered, so it is not read again. Everything else is.
            parent = await services.store.get_session(me.parent_id) if me.parent_id else None
            # The coordinator is the nearest coordinator above: usually the parent, already in hand.
            coordinator = parent
            if parent is not None and parent.role is not Role.coordinator:
                coordinator = await services.sessions.coordinator(parent)
            return WhoAmI(
                session_id=me.id,
                name=me.name,
                role=me.role.value,
                agent=me.agent,
                parent=parent.name if parent else None,
                coordinator=coordinator.name if coordinator else None,
                coordinator_live=coordinator.live if coordinator else None,
                siblings=await services.sessions.siblings(me, parent),
                tasks=await services.tasks.views(
                    [t for t in await services.store.list_tasks(assignee_id=me.id) if t.status not in FINISHED]
                ),
                directive=me.directive,
                directives=await services.store.active_directives(me.id),
                unread=await services.mail.unread(me),
            )

    @mcp.tool()
    async def list_sessions(
        ctx: Context[Any, Any],
        role: Annotated[RoleName | None, Field(description="Only sessions with this role.")] = None,
        status: Annotated[StatusName | None, Field(description="Only sessions with this status.")] = None,
    ) -> Sessions:
        """Every session of the project with its live status: use it to find names to mail."""
        async with rt.call(ctx) as me:
            sessions = await services.sessions.list_infos(
                Role(role) if role else None, SessionStatus(status) if status else None
            )
            return Sessions(sessions=sessions, unread=await services.mail.unread(me))

    @mcp.tool()
    async def list_siblings(ctx: Context[Any, Any]) -> Sessions:
        """The other sessions spawned by your parent (your team mates), with their live status."""
        async with rt.call(ctx) as me:
            return Sessions(sessions=await services.sessions.siblings(me), unread=await services.mail.unread(me))
