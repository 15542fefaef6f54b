"""The MCP face of maestro: thin tool handlers over the service layer."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer

from maestro_mcp import __version__

from . import prompts, tools_mail, tools_sessions, tools_tasks, tools_workers
from .runtime import Identity, ProcessIdentity, Registration, Runtime

__all__ = ["Identity", "ProcessIdentity", "Registration", "Runtime", "build_server"]

INSTRUCTIONS = (
    "maestro coordinates a team of coding agents. Call whoami first to learn your role, coordinator, "
    "tasks and directives. Talk to other agents with mail_send; block for replies and events with "
    "mail_wait rather than polling. Every result carries `unread`: when `unread.urgent` is true, read "
    "your mail before anything else."
)


def build_server(runtime: Runtime) -> MCPServer[Any]:
    # The SDK logs every tool error at INFO; agents read those errors in results, not on stderr.
    mcp: MCPServer[Any] = MCPServer("maestro", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")
    tools_sessions.register(mcp, runtime)
    tools_mail.register(mcp, runtime)
    tools_tasks.register(mcp, runtime)
    tools_workers.register(mcp, runtime)
    prompts.register(mcp)
    return mcp
