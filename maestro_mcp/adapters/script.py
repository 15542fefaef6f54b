"""Scripted agents: a Python file run with maestro's own interpreter, an MCP client of its own
`maestro serve` started from the environment (see `maestro_mcp.client.AgentClient`)."""

from __future__ import annotations

from .base import Adapter


class ScriptAdapter(Adapter):
    kind = "script"
