"""Helpers for the agent-surface tests: a real server's tools/list per role, sizes, the npm tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from maestro_mcp.cli.common import services_at
from maestro_mcp.client import serve_params
from maestro_mcp.models import Role
from maestro_mcp.server.portable import size

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "node_modules"
HERE = Path(__file__).resolve().parent
START_S = 30

WORKER_TOOLS = {
    "whoami",
    "list_sessions",
    "mail_send",
    "mail_inbox",
    "mail_wait",
    "mail_thread",
    "mail_ack",
    "task_create",
    "task_ready",
    "task_list",
    "task_get",
    "task_update",
    "report_progress",
    "state_set",
    "state_get",
}
COORDINATOR_TOOLS = WORKER_TOOLS | {"spawn_worker", "respawn_worker", "stop_worker", "approval_list", "approval_decide"}
FOR_THE_CLI = {"permission_prompt"}
"""Tools an agent's CLI calls and hides from its model: counted in the list, not in what a model reads."""


def model_part(tool: dict[str, Any]) -> dict[str, Any]:
    """What a model reads of a tool: its name, description and input schema."""
    return {k: tool[k] for k in ("name", "description", "inputSchema") if k in tool}


def wire(tools: Any) -> list[dict[str, Any]]:
    """tools/list's tools as JSON, as they travel."""
    return [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in tools]


async def real_tools_list(db: str, role: Role, *, claude_worker: bool = False) -> list[dict[str, Any]]:
    """The tools/list answer of a real `maestro serve` for `role`: a plain one (`--role`, listed before
    registration), or a spawned Claude worker's (resumed, with the permission_prompt tool)."""
    if claude_worker:
        async with services_at(db) as services:
            lead = await services.sessions.register(name="lead", role=Role.coordinator, agent="script")
            worker = await services.sessions.register(name="w1", role=Role.worker, agent="claude", parent="lead")
        params = serve_params(
            db=db, session=worker.session.id, token=worker.token, env={"MAESTRO_PERMISSIONS": "claude"}
        )
        assert lead.session.id
    else:
        params = serve_params(db=db, role=role.value)
    async with Client(params, read_timeout_seconds=START_S) as client:
        return wire((await client.list_tools()).tools)


def listing_size(tools: list[dict[str, Any]]) -> int:
    """Characters of the whole tools/list result, as compact JSON."""
    return size({"tools": tools})


def npm_tool(package: str, entry: str) -> Path:
    """A pinned npm tool from the repository's node_modules (`make clis`), or skip."""
    path = NODE_MODULES / package / entry
    if not path.is_file() or shutil.which("node") is None:
        message = f"{package} is not installed: run `make clis` (npm ci, versions pinned in package.json)"
        if os.environ.get("MAESTRO_REQUIRE_CLIS"):
            pytest.fail(message)  # CI installed them: missing means a broken setup
        pytest.skip(message)
    return path


def node_major() -> int:
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout
    return int(out.strip().lstrip("v").split(".")[0])


def node_argv(script: Path) -> list[str]:
    """`node SCRIPT`, on Node 20 with a shim for the one Node 22 export (fs.globSync) the conformance
    suite imports but uses only in its tier-check command."""
    if node_major() >= 22:
        return ["node", str(script)]
    return ["node", "--import", str(HERE / "node20" / "register.mjs"), str(script)]


def maestro_serve_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "maestro_mcp", "serve", *args]
