"""`maestro doctor`'s agent checks: each CLI's project config checked the way that CLI would use it.

A config that merely names the maestro server proves little: Claude once reported `✘ Failed to connect —
ENOENT: Executable not found in $PATH: "maestro"` for a config doctor called fine. So the command is
resolved on PATH as the CLI would resolve it, started, and put through one MCP handshake (initialize
and tools/list: no tool call, so no session is registered). Codex ignores a project's config until the
project is trusted; doctor says so, with the exact setting.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from maestro_mcp import adapters
from maestro_mcp.adapters.base import ServerEntry
from maestro_mcp.errors import MaestroError

OK, WARN, FAIL = "ok", "warn", "FAIL"
HANDSHAKE_S = 30.0
CONFIGURED = ("claude", "gemini", "codex")
_REFERENCE = re.compile(r"\$(?:(\w+)|\{([^}:]+?)(?::-([^}]*))?\})")


@dataclass
class Check:
    level: str
    what: str
    detail: str
    fix: str = ""


def _expand(value: str, env: Mapping[str, str]) -> str:
    """`$VAR`, `${VAR}` and `${VAR:-default}` as Claude and Gemini expand them in their configs."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in env:
            return env[name]
        return match.group(3) if match.group(3) is not None else match.group(0)

    return _REFERENCE.sub(sub, value)


def _version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"version unknown ({exc})"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


async def _handshake(command: str, entry: ServerEntry, env: Mapping[str, str], root: Path) -> str:
    """Start the server as the CLI would and complete one MCP handshake; a problem, or "" when it works."""
    server_env = {**env, **{k: _expand(v, env) for k, v in entry.env.items()}}
    args = [_expand(a, env) for a in entry.args]
    params = StdioServerParameters(command=command, args=args, env=server_env, cwd=str(root))
    try:
        with anyio.fail_after(HANDSHAKE_S):
            async with Client(params, read_timeout_seconds=HANDSHAKE_S) as client:
                tools = await client.list_tools()
    except TimeoutError:
        return f"`{command}` did not answer the MCP handshake within {HANDSHAKE_S:.0f} s"
    except Exception as exc:  # any failure to start or speak MCP is what the user needs to hear about
        return f"`{command} {' '.join(args)}` failed the MCP handshake: {exc or type(exc).__name__}"
    return "" if tools.tools else "the server answered but lists no tools"


async def config_checks(root: Path, env: Mapping[str, str]) -> list[Check]:
    checks = []
    for kind in CONFIGURED:
        try:
            adapter = adapters.load(kind, root)
        except MaestroError as exc:
            checks.append(Check(FAIL, f"{kind} config", str(exc)))
            continue
        what = f"{kind} config"
        state = adapter.read_project_config(root)
        if state is None:
            continue
        if state.entry is None:
            level = WARN if state.problem in ("no project MCP config", "does not name the maestro server") else FAIL
            checks.append(Check(level, what, f"{state.path}: {state.problem}", "Run `maestro init`."))
            continue
        command = _expand(state.entry.command, env)
        resolved = command if os.sep in command else shutil.which(command, path=env.get("PATH"))
        if resolved is None or not os.access(resolved, os.X_OK):
            checks.append(
                Check(
                    FAIL,
                    what,
                    f"{state.path} starts `{command}`, which is not on PATH: {kind} would fail to connect",
                    "Activate the environment maestro is installed in (e.g. `source .venv/bin/activate`) before"
                    " starting the agent, or run `maestro init` from it.",
                )
            )
            continue
        problem = await _handshake(resolved, state.entry, env, root)
        if problem:
            checks.append(Check(FAIL, what, problem, "Run it by hand to see why; then `maestro init` again."))
            continue
        trust = adapter.trust_problem(root, env)
        if trust:
            first, _, rest = trust.partition("\n")
            checks.append(Check(WARN, what, first, rest))
            continue
        checks.append(Check(OK, what, f"{state.path} starts `{resolved}`: handshake ok"))
    return checks


def launcher_checks(root: Path) -> list[Check]:
    checks = []
    for name in sorted(adapters.definitions.available(root)):
        try:
            definition = adapters.definitions.load(name, root)
        except MaestroError as exc:
            checks.append(Check(FAIL, f"launcher {name}", str(exc), "Fix the definition file."))
            continue
        if definition.adapter == "script":
            checks.append(Check(OK, f"launcher {name}", "runs Python scripts with this interpreter"))
            continue
        binary = shutil.which(definition.binary)
        if binary is None:
            checks.append(Check(WARN, f"launcher {name}", f"`{definition.binary}` is not on PATH", definition.install))
        else:
            checks.append(Check(OK, f"launcher {name}", f"{binary}: {_version(binary)}"))
    return checks
