"""The baseline: a bare MCP SDK stdio server with one tool that does nothing.

Every maestro figure in bench/ is a ratio against this server's round trip, measured in the same run.
"""

from __future__ import annotations

from mcp.server import MCPServer
from pydantic import BaseModel

server = MCPServer("noop")


class Done(BaseModel):
    ok: bool


@server.tool()
async def noop() -> Done:
    """Do nothing and say so."""
    return Done(ok=True)


if __name__ == "__main__":
    server.run()
