"""`maestro`: the command line for humans (and the `serve` entry point for agents).

Each module registers its commands on the one typer `app`; importing them here wires them in.
"""

from __future__ import annotations

import os

from maestro_mcp.cli import (  # noqa: F401  (registers commands)
    agents,
    approvals,
    core,
    dashboard,
    doctor,
    http,
    logs,
    migrate,
    observe,
    run,
    snapshots,
    state,
    tasks,
    tokens,
)
from maestro_mcp.cli.app import app, fail

__all__ = ["app", "fail", "main"]


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
