"""The MCP face of maestro: thin tool handlers over the service layer."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer

from maestro_mcp import __version__

from . import (
    prompts,
    resources,
    tools_approvals,
    tools_mail,
    tools_permission,
    tools_sessions,
    tools_state,
    tools_tasks,
    tools_workers,
)
from .runtime import Identity, ProcessIdentity, Registration, Runtime
from .toolkit import ListedByRole, ToolSet

__all__ = ["Identity", "ProcessIdentity", "Registration", "Runtime", "build_server", "declare_tools"]

INSTRUCTIONS = (
    "maestro coordinates a team of coding agents. Call whoami first to learn your role, coordinator, "
    "tasks and directives. Talk to other agents with mail_send; block for replies and events with "
    "mail_wait rather than polling. Every result carries `unread`: when `unread.urgent` is true, read "
    "your mail before anything else."
)


def declare_tools(runtime: Runtime) -> ToolSet:
    """Every tool this server offers, for any role (`tools/list` shows each role its own)."""
    tools = ToolSet()
    tools_sessions.register(tools, runtime)
    tools_mail.register(tools, runtime)
    tools_tasks.register(tools, runtime)
    tools_workers.register(tools, runtime)
    tools_approvals.register(tools, runtime)
    tools_permission.register(tools, runtime)
    tools_state.register(tools, runtime)
    return tools


def build_server(runtime: Runtime) -> MCPServer[Any]:
    tools = declare_tools(runtime)
    mcp: MCPServer[Any] = MCPServer(
        "maestro",
        instructions=INSTRUCTIONS,
        version=__version__,
        # The SDK logs every tool error at INFO; agents read those errors in results, not on stderr.
        log_level="WARNING",
        tools=tools.build(runtime.require_role),
        middleware=[ListedByRole(runtime.identity, tools.roles())],
    )
    prompts.register(mcp)
    resources.register(mcp, runtime.services)
    return mcp
