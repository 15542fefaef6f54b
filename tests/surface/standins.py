"""Stand-ins for tools that open issues will add, measured so the tool-list budgets leave room for them:
the contract's signatures (shared/DESIGN.md), descriptions and result shapes as long as this project
writes them, built by the same `ToolSet` as the real tools.

Every tool of the contract is real now (respawn_worker, state_set and state_get were the last), so there
is none; declare the next one here while its issue is open."""

from maestro_mcp.server.toolkit import ToolSet


def declare(tools: ToolSet) -> None:
    del tools  # nothing to come at the moment
