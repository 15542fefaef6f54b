"""A small async client for scripts: an MCP client of its own `maestro serve`, like any agent.

async with AgentClient(serve_params(db=path, name="alice")) as alice:
    me = await alice.call("whoami")
    await alice.call("mail_send", to="bob", body="hello")
"""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters


class ToolCallError(Exception):
    """A tool returned an error result; the text is what the model would read."""

    def __init__(self, tool: str, text: str) -> None:
        self.tool = tool
        self.text = text
        super().__init__(f"{tool}: {text}")


def serve_params(
    *,
    db: str,
    name: str | None = None,
    role: str | None = None,
    parent: str | None = None,
    session: str | None = None,
    token: str | None = None,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> StdioServerParameters:
    """How to start `maestro serve` (with this interpreter) acting as a new or an existing session."""
    args = ["-m", "maestro_mcp", "serve"]
    for flag, value in (("--name", name), ("--role", role), ("--parent", parent)):
        if value is not None:
            args += [flag, value]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")}
    child_env["MAESTRO_DB"] = db
    if session is not None and token is not None:
        child_env["MAESTRO_SESSION"] = session
        child_env["MAESTRO_TOKEN"] = token
    child_env.update(env or {})
    return StdioServerParameters(command=sys.executable, args=args, env=child_env, cwd=cwd)


class AgentClient:
    """One agent's connection to its own server; `call` returns the structured result."""

    @classmethod
    def from_env(cls, read_timeout_s: float | None = None) -> AgentClient:
        """A spawned script agent's own server: MAESTRO_DB, MAESTRO_SESSION and MAESTRO_TOKEN from the launcher."""
        db = os.environ.get("MAESTRO_DB")
        session, token = os.environ.get("MAESTRO_SESSION"), os.environ.get("MAESTRO_TOKEN")
        if not (db and session and token):
            raise RuntimeError("MAESTRO_DB, MAESTRO_SESSION and MAESTRO_TOKEN must be set (spawn_worker sets them).")
        return cls(serve_params(db=db, session=session, token=token), read_timeout_s=read_timeout_s)

    def __init__(self, server: Any, *, read_timeout_s: float | None = None) -> None:
        self._client = Client(server, read_timeout_seconds=read_timeout_s)

    async def __aenter__(self) -> AgentClient:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.__aexit__(exc_type, exc, tb)

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self._client.call_tool(tool, arguments)
        if result.is_error:
            text = " ".join(getattr(block, "text", "") for block in result.content)
            raise ToolCallError(tool, text)
        return dict(result.structured_content or {})
