"""The tool list agents pay for in every request: its size per role, its tools per role, and schemas
that Claude Code, Codex, Gemini CLI and MCP Inspector's `--strict` lint all read the same way.

Every figure comes from the real `tools/list` of a real `maestro serve` process. The budgets also
hold any tool an open issue adds: their stand-ins in
standins.py are built by the same machinery and their measured sizes added to the real list.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import standins
from projectkit import user_env
from surfacekit import (
    COORDINATOR_TOOLS,
    FOR_THE_CLI,
    WORKER_TOOLS,
    listing_size,
    model_part,
    npm_tool,
    real_tools_list,
)
from test_http import create_token, http_server, remote_agent

from maestro_mcp.cli.common import services_at
from maestro_mcp.models import Role
from maestro_mcp.server.portable import size
from maestro_mcp.server.toolkit import ToolSet

pytestmark = pytest.mark.anyio

BUDGETS = {Role.worker: (14_000, 8_000), Role.coordinator: (18_000, 11_000)}
"""(whole tools/list, the part a model reads), in characters of compact JSON (issue 12)."""
CLI_PREFIXES = {"claude": "mcp__maestro__", "codex": "mcp__maestro__", "gemini": "mcp_maestro_"}
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
INSPECT_S = 90


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "project" / ".maestro" / "maestro.db")


def tools_to_come(role: Role) -> list[dict[str, Any]]:
    """The stand-ins' wire form, for the tools `role`'s server will list once they exist."""
    tools = ToolSet()
    standins.declare(tools)

    async def no_gate(*_: Any) -> None:
        return None

    built = [t for t in tools.build(no_gate) if role in tools.roles()[t.name]]
    return [
        {
            "name": t.name,
            "description": t.description,
            "inputSchema": t.parameters,
            "outputSchema": t.output_schema,
            "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else {},
        }
        for t in built
    ]


@pytest.mark.parametrize("role", [Role.worker, Role.coordinator])
async def test_the_tool_list_fits_its_budget_with_room_for_the_tools_to_come(db: str, role: Role) -> None:
    # The worker's list is the longest a worker gets: a spawned Claude worker's, with permission_prompt.
    listed = await real_tools_list(db, role, claude_worker=role is Role.worker)
    future = tools_to_come(role)
    total_limit, model_limit = BUDGETS[role]

    total = listing_size(listed + future)
    read = sum(size(model_part(t)) for t in listed + future if t["name"] not in FOR_THE_CLI)

    assert total <= total_limit, f"{role.value}: tools/list is {total} characters (limit {total_limit})"
    assert read <= model_limit, f"{role.value}: a model reads {read} characters (limit {model_limit})"


async def test_a_worker_lists_the_worker_tools_and_a_coordinator_also_its_own(db: str) -> None:
    assert {t["name"] for t in await real_tools_list(db, Role.worker)} == WORKER_TOOLS
    assert {t["name"] for t in await real_tools_list(db, Role.coordinator)} == COORDINATOR_TOOLS
    assert {t["name"] for t in await real_tools_list(db, Role.operator)} == COORDINATOR_TOOLS


async def test_a_spawned_claude_worker_also_lists_the_permission_tool_its_cli_calls(db: str) -> None:
    assert {t["name"] for t in await real_tools_list(db, Role.worker, claude_worker=True)} == (
        WORKER_TOOLS | FOR_THE_CLI
    )


async def test_tool_hints_say_what_reads_what_destroys_and_what_repeats_safely(db: str) -> None:
    hints = {t["name"]: t.get("annotations", {}) for t in await real_tools_list(db, Role.coordinator)}

    readers = {
        "whoami", "list_sessions", "mail_inbox", "mail_wait", "mail_thread", "task_list", "task_get", "state_get",
    }  # fmt: skip
    for name in readers | {"approval_list"}:
        assert hints[name] == {"readOnlyHint": True}, name
    assert hints["stop_worker"]["destructiveHint"] is True
    assert hints["mail_ack"]["idempotentHint"] is True
    for name in COORDINATOR_TOOLS - readers - {"approval_list", "stop_worker"}:
        assert hints[name].get("destructiveHint") is False, name


async def test_an_http_agent_lists_the_tools_of_its_tokens_role(db: str) -> None:
    lead = await create_token(db, "lead", "--role", "coordinator")
    worker = await create_token(db, "w1", "--parent", "lead")

    async with http_server(db) as server:
        listed: dict[str, set[str]] = {}
        for name, token in (("lead", lead), ("w1", worker)):
            async with remote_agent(server.url, token) as remote:
                listed[name] = {t.name for t in (await remote.client.list_tools()).tools}
        async with remote_agent(server.url, worker) as remote:
            result = await remote.client.call_tool("stop_worker", {"session_id": "lead"})
            refused = " ".join(getattr(block, "text", "") for block in result.content)

    assert listed == {"lead": COORDINATOR_TOOLS, "w1": WORKER_TOOLS}
    assert refused is not None and refused.startswith("stop_worker is for coordinators and operators; you (w1)")


# -- portability ----------------------------------------------------------------------------------------
def subschemas(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object inside a schema, with its path (property names are not schemas)."""
    if not isinstance(node, dict):
        return
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from subschemas(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            yield from subschemas(node[key], f"{path}/{key}")
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(node.get(key, [])):
            yield from subschemas(sub, f"{path}/{key}[{i}]")


def problems(tool: dict[str, Any]) -> list[str]:
    """Where a tool breaks a rule of one of the agent CLIs (as observed, shared/AGENT_CLIS.md)."""
    found = []
    name = tool["name"]
    for cli, prefix in CLI_PREFIXES.items():
        if not TOOL_NAME.match(prefix + name):
            found.append(f"{cli}: the name {prefix + name} is not 1-64 letters, digits, '_' or '-'")
    text = json.dumps(tool)
    if "$ref" in text or "$defs" in text:
        found.append("codex renders $ref as unknown, gemini 0.15 could not resolve it: inline it")
    inputs = tool["inputSchema"]
    if inputs.get("type") != "object" or any(k in inputs for k in ("anyOf", "oneOf", "allOf")):
        found.append("claude: an input schema is one object at its root")
    for kind in ("inputSchema", "outputSchema"):
        for path, node in subschemas(tool.get(kind)):
            where = f"{kind}{path}"
            if "title" in node:
                found.append(f"{where}: pydantic's title is noise")
            if isinstance(node.get("type"), list):
                found.append(f"{where}: gemini rewrites a type list to `nullable`; inspector warns")
            if ("properties" in node or "required" in node) and node.get("type") != "object":
                found.append(f"{where}: codex guesses the type of an object without `type`")
            if "items" in node and node.get("type") != "array":
                found.append(f"{where}: codex guesses the type of an array without `type`")
            if "enum" in node and node.get("type") != "string":
                found.append(f"{where}: an enum says its type")
            if not any(k in node for k in ("type", "anyOf", "enum")):
                found.append(f"{where}: untyped (inspector: accepts anything)")
    for arg, spec in inputs.get("properties", {}).items():
        if {"type": "null"} in spec.get("anyOf", []):
            found.append(f"{arg}: an optional argument is its plain type, not anyOf [T, null]")
        if not spec.get("description"):
            found.append(f"{arg}: no description")
        default = spec.get("default")
        if default not in (None, "", [], False, 0) and "default" not in spec.get("description", "").lower():
            found.append(f"{arg}: codex drops `default`; its description must say {default!r}")
    return found


async def test_every_schema_keeps_the_rules_of_every_agent_cli(db: str) -> None:
    listed = await real_tools_list(db, Role.coordinator) + [
        t for t in await real_tools_list(db, Role.worker, claude_worker=True) if t["name"] in FOR_THE_CLI
    ]
    assert {name: found for t in listed if (found := problems(t)) for name in [t["name"]]} == {}
    for tool in listed:
        if tool["name"] not in FOR_THE_CLI:
            assert tool["outputSchema"]["type"] == "object" and "unread" in tool["outputSchema"]["properties"]


async def test_inspector_strict_lint_finds_nothing_in_any_role(db: str, tmp_path: Path) -> None:
    inspector = npm_tool("@modelcontextprotocol/inspector", "clients/launcher/build/index.js")
    async with services_at(db) as services:
        worker = await services.sessions.register(name="w1", role=Role.worker, agent="claude")
    cases: dict[str, tuple[list[str], dict[str, str]]] = {
        "coordinator": ([], {}),
        "claude worker": (
            [],
            {"MAESTRO_SESSION": worker.session.id, "MAESTRO_TOKEN": worker.token, "MAESTRO_PERMISSIONS": "claude"},
        ),
    }
    for label, (args, env) in cases.items():
        # The inspector gives the server only the environment named with -e.
        named = [f"-e{k}={v}" for k, v in {"MAESTRO_DB": db, **env}.items()]
        argv = ["node", str(inspector), "--cli", *named, sys.executable, "-m", "maestro_mcp", "serve", *args]
        with anyio.fail_after(INSPECT_S):
            done = await anyio.run_process(
                [*argv, "--method", "tools/list", "--strict"], env=user_env(db), cwd=str(tmp_path), check=False
            )
        stderr = done.stderr.decode()
        assert done.returncode == 0, f"{label}: inspector exited {done.returncode}:\n{stderr}"
        assert "Warning" not in stderr and "Error" not in stderr, f"{label}:\n{stderr}"
        listed = {t["name"] for t in json.loads(done.stdout)["tools"]}
        assert listed == (COORDINATOR_TOOLS if label == "coordinator" else WORKER_TOOLS | FOR_THE_CLI), label
