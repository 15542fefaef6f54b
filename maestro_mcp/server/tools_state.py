"""Shared-state tools: state_set and state_get, values the whole team reads by key."""

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from .results import StateSet, StateValue
from .runtime import Runtime
from .toolkit import ToolSet


def register(tools: ToolSet, rt: Runtime) -> None:
    services = rt.services
    state = services.state

    @tools.tool()
    async def state_set(
        ctx: Context[Any, Any],
        key: Annotated[str, Field(description="e.g. api.port")],
        value: Annotated[str, Field(description="JSON text, at most 64 KiB.")],
        ttl_s: Annotated[float | None, Field(description="Expire after this many seconds.")] = None,
        if_version: Annotated[int | None, Field(description="Only if still this version (0: unset).")] = None,
    ) -> StateSet:
        """Set a value the team reads by key; if_version makes it a compare-and-set."""
        async with rt.call(ctx) as me:
            entry = await state.set(me, key, value, ttl_s=ttl_s, if_version=if_version)
            return StateSet(key=entry.key, version=entry.version, unread=await services.mail.unread(me))

    @tools.tool(read_only=True)
    async def state_get(
        ctx: Context[Any, Any],
        key: Annotated[str, Field(description="The key.")],
        wait_s: Annotated[float | None, Field(description="Wait up to this long for a newer version.")] = None,
        after_version: Annotated[int, Field(description="Newer than this (0: set at all).")] = 0,
    ) -> StateValue:
        """A shared value with its version and who set it when."""
        async with rt.call(ctx) as me:
            view = await state.view(await state.require(key, wait_s=wait_s, after_version=after_version))
            return StateValue(
                key=view.key,
                value=view.value,
                version=view.version,
                set_by=view.set_by,
                set_at=view.set_at,
                changed=view.version > after_version,
                unread=await services.mail.unread(me),
            )
