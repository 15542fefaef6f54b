"""The official MCP tools against the real servers: the conformance suite's server scenarios against
`maestro serve --http` with a valid token, and MCP Inspector's CLI round trip against stdio.

Both come pinned from package.json (`make clis`). The scenarios maestro fails are listed, each with
its reason, in conformance-expected-failures.yml; the suite itself fails the run when the failures
differ from that list in either direction.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import anyio
import pytest
from bearer_proxy import bearer_proxy
from projectkit import user_env
from surfacekit import HERE, node_argv, npm_tool
from test_http import create_token, http_server

from maestro_mcp.cli.common import services_at
from maestro_mcp.models import Role

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SUITE_S = 300
INSPECT_S = 90
BASELINE = HERE / "conformance-expected-failures.yml"
PASSING = {
    "server-initialize",
    "ping",
    "tools-list",
    "tools-call-error",
    "server-sse-multiple-streams",
    "resources-list",
    "prompts-list",
    "dns-rebinding-protection",
}


def results(out: Path) -> dict[str, set[str]]:
    """scenario -> statuses of its checks, from the suite's checks.json files."""
    found: dict[str, set[str]] = {}
    for checks in out.glob("*/checks.json"):
        scenario = re.sub(r"-\d{4}-\d\d-\d\dT[\d-]+Z$", "", checks.parent.name.removeprefix("server-"))
        found[scenario] = {c["status"] for c in json.loads(checks.read_text(encoding="utf-8"))}
    return found


async def test_the_conformance_suites_server_scenarios_pass_or_fail_only_as_listed(tmp_path: Path) -> None:
    suite = npm_tool("@modelcontextprotocol/conformance", "dist/index.js")
    db = str(tmp_path / "project" / ".maestro" / "maestro.db")
    token = await create_token(db, "conformance", "--role", "coordinator")
    out = tmp_path / "results"

    async with http_server(db) as server, bearer_proxy(server.base, token) as base:
        argv = [*node_argv(suite), "server", "--url", f"{base}/mcp", "--expected-failures", str(BASELINE)]
        with anyio.fail_after(SUITE_S):
            done = await anyio.run_process([*argv, "-o", str(out)], check=False, cwd=str(tmp_path))

    report = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, report[-6000:]
    assert "Baseline check passed: all failures are expected." in report
    statuses = results(out)
    assert {s for s, got in statuses.items() if "FAILURE" not in got} >= PASSING, statuses


async def test_the_inspector_cli_lists_and_calls_tools_over_stdio(tmp_path: Path) -> None:
    inspector = npm_tool("@modelcontextprotocol/inspector", "clients/launcher/build/index.js")
    db = str(tmp_path / "project" / ".maestro" / "maestro.db")
    async with services_at(db) as services:
        await services.sessions.register(name="bob", role=Role.worker, agent="script")
    # The inspector gives the server only the environment named with -e.
    serve = ["node", str(inspector), "--cli", "-e", f"MAESTRO_DB={db}", sys.executable, "-m", "maestro_mcp"]
    serve += ["serve", "--name", "alice"]

    async def inspect(*args: str) -> dict[str, object]:
        with anyio.fail_after(INSPECT_S):
            done = await anyio.run_process([*serve, *args], env=user_env(db), cwd=str(tmp_path), check=False)
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
        return dict(json.loads(done.stdout))

    listed = await inspect("--method", "tools/list")
    sent = await inspect("--method", "tools/call", "--tool-name", "mail_send", "--tool-arg", "to=bob", "body=hi")
    # A second server for the same name: alice ended with the first, so it takes her back.
    me = await inspect("--method", "tools/call", "--tool-name", "whoami")

    assert "mail_send" in {t["name"] for t in listed["tools"]}  # type: ignore[attr-defined]
    structured = sent["structuredContent"]
    assert isinstance(structured, dict) and structured["recipients"] == ["bob"]
    assert json.loads(sent["content"][0]["text"]) == structured  # type: ignore[index]
    assert me["structuredContent"]["name"] == "alice"  # type: ignore[index]
    async with services_at(db) as services:
        assert [s.name for s in await services.store.list_sessions()] == ["bob", "alice"]
