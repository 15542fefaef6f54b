"""maestro_mcp: an MCP server that lets teams of coding agents coordinate."""

from __future__ import annotations

__version__ = "0.1.0"
