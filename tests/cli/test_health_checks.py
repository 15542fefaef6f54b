"""`maestro init` configs, checked by the REAL CLIs' own health checks; the checks leave no session.

`maestro init` in a temporary git project writes the project MCP config of Claude (.mcp.json
plus the approval in .claude/settings.local.json), Gemini (.gemini/settings.json) and Codex
(.codex/config.toml). Each CLI's health check starts a fresh `maestro serve` from that config:
`claude mcp list` and `gemini mcp list` must say maestro is connected (they exit 0 either way,
so the text is what counts), and Codex's app-server must list maestro's tools. A server that is
only health-checked never gets a tool call, so it must not register a session.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from agent_clis import Sandbox, make_sandbox, open_store, require_cli, run_bounded

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RUN_S = 60


async def run(box: Sandbox, argv: list[str], env: dict[str, str] | None = None) -> str:
    """Run a command in the project; its stdout and stderr together (some CLIs report on stderr)."""
    code, output = await run_bounded(argv, env=env or box.env, cwd=box.project, timeout_s=RUN_S)
    assert code == 0, f"{argv} exited {code}:\n{output}"
    return output


@pytest.fixture
async def project(tmp_path: Path) -> Sandbox:
    """A git project after `maestro init`, with a temporary HOME."""
    box = make_sandbox(tmp_path, None)
    await run(box, ["git", "init", "-q", str(box.project)])
    out = await run(box, box.maestro_argv("init"))
    for written in (".mcp.json", ".claude/settings.local.json", ".gemini/settings.json", ".codex/config.toml"):
        assert f"wrote {written}" in out and (box.project / written).is_file(), out
    return box


def status_line(output: str) -> str:
    """The line a `mcp list` prints about the maestro server."""
    lines = [line for line in output.splitlines() if "maestro:" in line]
    assert lines, f"no maestro server listed:\n{output}"
    return lines[0]


async def no_sessions(box: Sandbox) -> None:
    async with open_store(box.db) as store:
        sessions = await store.list_sessions()
    assert sessions == [], f"a health check left sessions behind: {[s.name for s in sessions]}"


async def test_claude_mcp_list_shows_maestro_connected(project: Sandbox) -> None:
    claude = require_cli("claude")
    # Claude lists a project server as pending until the folder is trusted; trust it in the
    # temporary HOME's ~/.claude.json (as accepting the trust dialog once would).
    trusted = {"projects": {str(project.project.resolve()): {"hasTrustDialogAccepted": True}}}
    (project.home / ".claude.json").write_text(json.dumps(trusted))
    line = status_line(await run(project, [claude, "mcp", "list"]))
    assert "Connected" in line and "serve" in line, line
    await no_sessions(project)


async def test_gemini_mcp_list_shows_maestro_connected(project: Sandbox) -> None:
    gemini = require_cli("gemini")
    # Gemini disables a project's servers until the folder is trusted.
    env = {**project.env, "GEMINI_CLI_TRUST_WORKSPACE": "true"}
    line = status_line(await run(project, [gemini, "mcp", "list"], env))
    assert "Connected" in line and "serve" in line, line
    await no_sessions(project)


async def test_codex_app_server_starts_maestro_and_lists_its_tools(project: Sandbox) -> None:
    codex = require_cli("codex")
    # `codex mcp list` never starts a server; a thread of the app-server does. Codex reads the
    # project's .codex/config.toml only when $CODEX_HOME/config.toml trusts the project.
    config = f'[projects.{json.dumps(str(project.project.resolve()))}]\ntrust_level = "trusted"\n'
    (Path(project.env["CODEX_HOME"]) / "config.toml").write_text(config)
    with anyio.fail_after(RUN_S):
        async with AppServer(project, codex) as app:
            await app.request("initialize", {"clientInfo": {"name": "maestro-tests", "version": "0"}})
            await app.notify("initialized")
            started = await app.request("thread/start", {"cwd": str(project.project), "ephemeral": True})
            thread = started["thread"]["id"]
            startup = await app.notification(
                "mcpServer/startupStatus/updated", lambda p: p["name"] == "maestro" and p["status"] != "starting"
            )
            assert startup["status"] == "ready", startup
            status = await app.request("mcpServerStatus/list", {"threadId": thread, "serverName": "maestro"})
    servers = {s["name"]: s for s in status["data"]}
    assert "maestro" in servers, status
    tools = set(servers["maestro"].get("tools") or {})
    assert {"whoami", "mail_wait", "spawn_worker", "report_progress"} <= tools, servers["maestro"]
    await no_sessions(project)


class AppServer:
    """A `codex app-server` over stdio: JSON-RPC, one message a line. Closing stdin ends it."""

    def __init__(self, box: Sandbox, codex: str) -> None:
        self.argv = [codex, "app-server"]
        self.box = box
        self._next_id = 0
        self._buffer = b""
        self.seen: list[dict[str, Any]] = []

    async def __aenter__(self) -> AppServer:
        self.process = await anyio.open_process(
            self.argv, env=self.box.env, cwd=self.box.project, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.aclose()
        with anyio.move_on_after(10):
            await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(json.dumps(message).encode() + b"\n")

    async def _receive(self) -> dict[str, Any]:
        """The next message; every one is also kept, so a notification that came early is not lost."""
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            self._buffer += await self.process.stdout.receive()
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line) if line.strip().startswith(b"{") else {}
        self.seen.append(message)
        return message

    async def notify(self, method: str) -> None:
        await self._send({"method": method})

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        await self._send({"id": self._next_id, "method": method, "params": params})
        while True:
            message = await self._receive()
            if message.get("id") == self._next_id and "method" not in message:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    async def notification(self, method: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first notification `method` whose params match, received before or after this call."""
        index = 0
        while True:
            if index == len(self.seen):
                await self._receive()
            message = self.seen[index]
            index += 1
            if message.get("method") == method and match(message.get("params") or {}):
                params: dict[str, Any] = message["params"]
                return params
