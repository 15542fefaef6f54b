"""Approval tools for coordinators: approval_list, approval_decide."""

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from maestro_mcp.models import iso

from .results import Approval, Approvals, Decided
from .runtime import Runtime
from .toolkit import COORDINATORS, ToolSet


def register(tools: ToolSet, rt: Runtime) -> None:
    services = rt.services

    @tools.tool(roles=COORDINATORS, read_only=True)
    async def approval_list(ctx: Context[Any, Any]) -> Approvals:
        """Your workers' permission requests the policy left open; each is denied if not decided in time."""
        async with rt.call(ctx) as me:
            pending = await services.approvals.pending_for(me)
            names = {s.id: s.name for s in await services.store.list_sessions()}
            return Approvals(
                approvals=[
                    Approval(
                        request_id=r.id,
                        session_id=r.session_id,
                        name=names.get(r.session_id, r.session_id),
                        tool=r.tool,
                        input=r.input,
                        reason=r.reason,
                        created_at=iso(r.created_at) or "",
                        expires_at=iso(r.expires_at) or "",
                    )
                    for r in pending
                ],
                unread=await services.mail.unread(me),
            )

    @tools.tool(roles=COORDINATORS)
    async def approval_decide(
        ctx: Context[Any, Any],
        request_id: Annotated[str, Field(description="From approval_list or the event mail.")],
        allow: Annotated[bool, Field(description="true runs the tool; false denies it.")],
        reason: Annotated[str, Field(description="Why; the worker reads it.")] = "",
        remember: Annotated[bool, Field(description="true: decide such calls so for your team from now on.")] = False,
    ) -> Decided:
        """Answer a worker's permission request: its waiting tool call runs, or is denied with your reason."""
        async with rt.call(ctx) as me:
            decided = await services.approvals.decide(me, request_id, allow, reason, remember)
            return Decided(
                request_id=decided.id,
                decision=decided.status.value,
                rule=decided.rule,
                unread=await services.mail.unread(me),
            )
