"""The pure launch planner, per built-in launcher: exactly the argv, environment and files expected.

Nothing here starts a process or touches the disk (the workspace does not even exist). What is
pinned is what the real-CLI tests showed each CLI needs: Claude's --strict-mcp-config, the
allow rule for mcp__maestro and the prompt after `--`; Codex's env_vars, required, approve and
tool_timeout_sec; Gemini's explicit env entries (it strips TOKEN-like variables) and trust.
The worker's token travels only in the environment, never in argv or a file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any, Literal

import pytest
from agent_clis import require_cli

from maestro_mcp.errors import InvalidArgument
from maestro_mcp.launch import definitions
from maestro_mcp.launch.plan import FileWrite, LaunchPlan, LaunchRequest, build_plan

TOKEN = "tok-0123456789abcdef"
MANIFEST = "# You are w1, a maestro worker\nDirective: « ship it » 🚀\nUse `whoami` first."
PYTHON = "/venv/bin/python"
PROJECT = Path("/nowhere/proj")
WORKSPACE = PROJECT / ".maestro" / "worktrees" / "w1"
DB = "/nowhere/proj/.maestro/maestro.db"
SERVER = [PYTHON, "-m", "maestro_mcp", "serve"]
PARENT_ENV = {
    "PATH": "/usr/local/bin:/usr/bin",
    "HOME": "/home/u",
    "ANTHROPIC_API_KEY": "sk-parent",
    "MAESTRO_SESSION": "s-parent",
    "MAESTRO_TOKEN": "tok-parent",
    "MAESTRO_DB": "/elsewhere/other.db",
    "MAESTRO_MAX_WORKERS": "3",
}
# The parent's variables minus every MAESTRO_*, then the worker's own.
INHERITED = {"PATH": "/usr/local/bin:/usr/bin", "HOME": "/home/u", "ANTHROPIC_API_KEY": "sk-parent"}
OWN = {
    "MAESTRO_SESSION": "s-w1",
    "MAESTRO_TOKEN": TOKEN,
    "MAESTRO_DB": DB,
    "MAESTRO_MANIFEST": "/nowhere/proj/.maestro/manifests/w1.md",
}
MANIFEST_FILE = FileWrite("/nowhere/proj/.maestro/manifests/w1.md", MANIFEST)


def plan(
    agent: str,
    *,
    model: str | None = None,
    mode: Literal["headless", "interactive"] = "headless",
    script: str | None = None,
) -> LaunchPlan:
    return build_plan(
        LaunchRequest(
            definition=definitions.load(agent, None),
            session_id="s-w1",
            token=TOKEN,
            name="w1",
            manifest=MANIFEST,
            workspace=WORKSPACE,
            project_root=PROJECT,
            db=DB,
            base_env=PARENT_ENV,
            mode=mode,
            model=model,
            script=script,
            python=PYTHON,
        )
    )


def json_files(p: LaunchPlan) -> dict[str, tuple[Any, bool]]:
    """path -> (parsed JSON, merge_json) of every file but the manifest."""
    return {f.path: (json.loads(f.content), f.merge_json) for f in p.files if f != MANIFEST_FILE}


def common(p: LaunchPlan) -> None:
    assert p.cwd == str(WORKSPACE)
    assert p.log_path == "/nowhere/proj/.maestro/logs/w1.log"
    assert p.manifest_path == MANIFEST_FILE.path
    assert p.files[0] == MANIFEST_FILE
    assert all(isinstance(a, str) for a in p.argv)
    assert not any(TOKEN in a for a in p.argv), "the token must never be on a command line"
    assert not any(TOKEN in f.content for f in p.files), "the token must never be written to a file"


def test_claude_headless_plan() -> None:
    p = plan("claude", model="opus")
    common(p)
    config = "/nowhere/proj/.maestro/mcp/w1.claude.json"
    prompt = definitions.load("claude", None).prompt
    assert p.argv == [
        "claude", "-p", "--permission-mode", "acceptEdits",
        "--mcp-config", config, "--strict-mcp-config",
        "--allowedTools", "mcp__maestro",
        "--append-system-prompt", MANIFEST,
        "--model", "opus",
        "--", prompt,
    ]  # fmt: skip
    assert p.env == {**INHERITED, "ENABLE_TOOL_SEARCH": "false", "MCP_TOOL_TIMEOUT": "3600000", **OWN}
    # Claude passes its whole environment to the server: the config names no variable at all.
    server = {"type": "stdio", "command": PYTHON, "args": SERVER[1:], "timeout": 3_600_000}
    assert json_files(p) == {config: ({"mcpServers": {"maestro": server}}, False)}


def test_claude_interactive_plan_keeps_the_prompt_after_the_separator() -> None:
    p = plan("claude", mode="interactive")
    common(p)
    assert "-p" not in p.argv
    assert p.argv[-2] == "--" and p.argv[-1] == definitions.load("claude", None).prompt
    assert "--model" not in p.argv, "no model given: the CLI's default"


def test_codex_headless_plan() -> None:
    p = plan("codex", model="gpt-5.1-codex")
    common(p)
    prompt = definitions.load("codex", None).prompt
    server = (
        'mcp_servers.maestro={command = "/venv/bin/python", args = ["-m", "maestro_mcp", "serve"], '
        'env_vars = ["MAESTRO_SESSION", "MAESTRO_TOKEN", "MAESTRO_DB"], required = true, '
        'default_tools_approval_mode = "approve", startup_timeout_sec = 60, tool_timeout_sec = 3600}'
    )
    assert p.argv == [
        "codex", "exec", "--skip-git-repo-check", "--sandbox", "workspace-write",
        "-c", server,
        "-c", "developer_instructions=" + json.dumps(MANIFEST, ensure_ascii=False),
        "-m", "gpt-5.1-codex",
        prompt,
    ]  # fmt: skip
    assert p.env == {**INHERITED, **OWN}
    assert json_files(p) == {}, "Codex gets its server config on the command line, never in a file"
    # Both -c values are TOML that Codex parses back to the intended values.
    assert tomllib.loads(server)["mcp_servers"]["maestro"] == {
        "command": PYTHON,
        "args": SERVER[1:],
        "env_vars": ["MAESTRO_SESSION", "MAESTRO_TOKEN", "MAESTRO_DB"],
        "required": True,
        "default_tools_approval_mode": "approve",
        "startup_timeout_sec": 60,
        "tool_timeout_sec": 3600,
    }
    assert tomllib.loads(p.argv[8])["developer_instructions"] == MANIFEST, "strict TOML, emoji included"


def test_codex_interactive_plan() -> None:
    p = plan("codex", mode="interactive")
    common(p)
    assert p.argv[0] == "codex" and p.argv[1] == "-c" and "exec" not in p.argv
    assert p.argv[-1] == definitions.load("codex", None).prompt


def test_gemini_headless_plan() -> None:
    p = plan("gemini", model="gemini-2.5-pro")
    common(p)
    prompt = definitions.load("gemini", None).prompt
    # No system-prompt flag: the manifest leads the prompt.
    assert p.argv == [
        "gemini", "-m", "gemini-2.5-pro", "--approval-mode", "auto_edit", "-p", f"{MANIFEST}\n\n{prompt}"
    ]  # fmt: skip
    assert p.env == {**INHERITED, "GEMINI_CLI_TRUST_WORKSPACE": "true", **OWN}
    entry = {
        "command": PYTHON,
        "args": SERVER[1:],
        # Gemini strips TOKEN-like variables from a server's environment: each is passed explicitly.
        "env": {
            "MAESTRO_SESSION": "${MAESTRO_SESSION:-}",
            "MAESTRO_TOKEN": "${MAESTRO_TOKEN:-}",
            "MAESTRO_DB": "${MAESTRO_DB:-}",
        },
        "trust": True,
        "timeout": 3_600_000,
    }
    # The workspace's own settings file, merged into whatever the user keeps there.
    assert json_files(p) == {str(WORKSPACE / ".gemini" / "settings.json"): ({"mcpServers": {"maestro": entry}}, True)}


def test_gemini_interactive_plan() -> None:
    p = plan("gemini", mode="interactive")
    common(p)
    assert p.argv == ["gemini", "-i", f"{MANIFEST}\n\n{definitions.load('gemini', None).prompt}"]


@pytest.mark.parametrize("mode", ["headless", "interactive"])
def test_script_plan(mode: Literal["headless", "interactive"]) -> None:
    p = plan("script", script="/nowhere/proj/agents/worker.py", mode=mode)
    common(p)
    assert p.argv == [PYTHON, "/nowhere/proj/agents/worker.py"]
    assert p.env == {**INHERITED, **OWN}
    assert p.files == [MANIFEST_FILE]


def test_script_plan_without_a_script_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="script:path"):
        plan("script")


# Flags each built-in definition passes, and the help text that must list them.
HELP = {"claude": ["--help"], "codex": ["exec", "--help"], "gemini": ["--help"]}


@pytest.mark.parametrize("agent", sorted(HELP))
def test_launcher_flags_exist_in_the_installed_cli(agent: str) -> None:
    binary = require_cli(agent)
    definition = definitions.load(agent, None)
    flags = {a for mode in (definition.headless, definition.interactive) if mode for a in mode.argv if a[:1] == "-"}
    flags |= {a for a in definition.model_args if a[:1] == "-"}
    flags.discard("--")
    env = {"PATH": str(Path(binary).parent) + ":/usr/bin:/bin", "HOME": "/nonexistent", "NO_COLOR": "1"}
    done = subprocess.run(
        [binary, *HELP[agent]], capture_output=True, text=True, timeout=60, env=env, check=False, cwd="/"
    )
    text = done.stdout + done.stderr
    missing = sorted(f for f in flags if f not in text)
    assert not missing, f"{agent} --help does not list {missing}"
    assert shutil.which(definition.binary, path=env["PATH"]), "the definition's binary name is what npm installs"
