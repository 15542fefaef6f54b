"""One adapter per agent CLI: its code in `maestro_mcp/adapters/NAME.py`, its definition file in the
top-level `launchers/NAME.toml`. Adding a CLI means adding one of each and listing it in ADAPTERS.
"""

from __future__ import annotations

from pathlib import Path

from . import definitions
from .base import Adapter, FileWrite, LaunchPlan, LaunchRequest, all_credentials, build_plan
from .claude import ClaudeAdapter
from .codex import CodexAdapter
from .definitions import LauncherDef
from .gemini import GeminiAdapter
from .script import ScriptAdapter

__all__ = [
    "ADAPTERS",
    "Adapter",
    "FileWrite",
    "LaunchPlan",
    "LaunchRequest",
    "LauncherDef",
    "adapter_for",
    "all_credentials",
    "build_plan",
    "definitions",
    "load",
    "plan",
]

ADAPTERS: dict[str, type[Adapter]] = {a.kind: a for a in (ClaudeAdapter, CodexAdapter, GeminiAdapter, ScriptAdapter)}


def adapter_for(definition: LauncherDef) -> Adapter:
    return ADAPTERS[definition.adapter](definition)


def load(kind: str, project_root: Path | None) -> Adapter:
    """The adapter for agent `kind`, with its definition (a project's own one overrides the built-in)."""
    return adapter_for(definitions.load(kind, project_root))


def plan(req: LaunchRequest) -> LaunchPlan:
    """The launch plan for `req`, rendered by the adapter its definition names."""
    return build_plan(req, adapter_for(req.definition))
