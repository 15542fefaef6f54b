"""permission_prompt: where an agent CLI asks for a decision it would otherwise put to a human.

Claude Code's `--permission-prompt-tool mcp__maestro__permission_prompt` calls it in headless mode
with the tool it is about to use; Claude hides it from its model. The answer is the project
policy's, or the team's (see `service.approvals`): JSON text `{"behavior": "allow", "updatedInput":
…}` or `{"behavior": "deny", "message": …}`, the message being what the model reads. This tool is
listed only by a server started for such a CLI.
"""

import json
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from maestro_mcp import adapters
from maestro_mcp.errors import MaestroError
from maestro_mcp.policy import Decision

from .runtime import Runtime
from .toolkit import ToolSet


def register(tools: ToolSet, rt: Runtime) -> None:
    if not rt.permission_cli:
        return
    adapter = adapters.load(rt.permission_cli, rt.project_root)
    if not adapter.prompt_tool:
        return  # that CLI asks through a hook instead

    # Claude reads one text block holding the JSON answer: no structured content beside it.
    @tools.tool(structured=False)
    async def permission_prompt(
        ctx: Context[Any, Any],
        tool_name: Annotated[str, Field(description="The tool the agent is about to use.")],
        input: Annotated[dict[str, Any], Field(description="Its arguments.")],
        tool_use_id: Annotated[str, Field(description="The CLI's id for the call.")] = "",
    ) -> str:
        """Decides whether the agent may use a tool (asked by the agent's CLI, not by its model)."""
        async with rt.call(ctx) as me:
            call = adapter.tool_call({"tool_name": tool_name, "tool_input": input})
            if call is None:
                return json.dumps({"behavior": "allow", "updatedInput": input})
            try:
                verdict = await rt.services.approvals.judge(me, call, rt.project_root or Path.cwd(), input)
            except MaestroError as exc:
                return json.dumps({"behavior": "deny", "message": f"maestro could not decide: {exc}"})
            if verdict.decision is Decision.allow:
                return json.dumps({"behavior": "allow", "updatedInput": input})
            return json.dumps({"behavior": "deny", "message": f"maestro: {verdict.reason}"})
