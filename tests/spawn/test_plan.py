"""The pure launch planner: what every launcher definition must give the agent it starts.

The exact flags of each agent CLI are checked against the real CLIs in tests/cli/; here, the contract
every definition shares: an argument list (never a shell string), the worker's own identity in the
environment and nothing else of the parent's MAESTRO_*, the maestro server wired in, the manifest
delivered the way the definition says, and files only under .maestro/ or the worker's workspace.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from maestro_mcp.adapters import LaunchPlan, LaunchRequest, definitions
from maestro_mcp.adapters import plan as build_plan

BUILTIN = ["claude", "codex", "gemini", "script"]
MANIFEST = 'You are w1.\nSay "hi"; then $(rm -rf ~) stays text.'
SERVER = [sys.executable, "-m", "maestro_mcp", "serve"]


def plan_for(name: str, root: Path, mode: str = "headless", model: str | None = None) -> LaunchPlan:
    return build_plan(
        LaunchRequest(
            definition=definitions.load(name, root),
            session_id="s-worker",
            token="worker-token",
            name="w1",
            manifest=MANIFEST,
            workspace=root / "ws",
            project_root=root,
            db=str(root / ".maestro" / "maestro.db"),
            base_env={"PATH": "/usr/bin", "API_KEY": "k", "MAESTRO_SESSION": "s-parent", "MAESTRO_DEBUG": "1"},
            mode=mode,  # type: ignore[arg-type]
            model=model,
            script=str(root / "agent.py"),
            python=sys.executable,
        )
    )


def server_configs(plan: LaunchPlan) -> list[dict[str, Any]]:
    """Every maestro server entry the plan hands the CLI: in a JSON file it writes, or a `-c` TOML override."""
    found = []
    for f in plan.files:
        if f.path.endswith(".json"):
            found.append(json.loads(f.content)["mcpServers"]["maestro"])
    for arg in plan.argv:
        if arg.startswith("mcp_servers.maestro="):
            found.append(tomllib.loads(arg)["mcp_servers"]["maestro"])
    return found


@pytest.mark.parametrize("mode", ["headless", "interactive"])
@pytest.mark.parametrize("name", BUILTIN)
def test_every_launcher_plans_an_argument_list_with_the_workers_identity_server_and_manifest(
    tmp_path: Path, name: str, mode: str
) -> None:
    definition = definitions.load(name, tmp_path)
    plan = plan_for(name, tmp_path, mode)

    assert isinstance(plan.argv, list) and all(isinstance(a, str) for a in plan.argv)
    assert plan.argv[0] == (sys.executable if name == "script" else definition.binary)
    assert plan.cwd == str(tmp_path / "ws")
    # The worker's own identity, the parent's environment otherwise, and none of the parent's MAESTRO_*.
    assert plan.env["MAESTRO_SESSION"] == "s-worker" and plan.env["MAESTRO_TOKEN"] == "worker-token"
    assert plan.env["MAESTRO_DB"] == str(tmp_path / ".maestro" / "maestro.db")
    assert plan.env["API_KEY"] == "k" and plan.env["PATH"] == "/usr/bin"
    assert "MAESTRO_DEBUG" not in plan.env
    # The manifest is written, and reaches the agent the way the definition says.
    assert plan.manifest_path == str(tmp_path / ".maestro" / "manifests" / "w1.md")
    assert any(f.path == plan.manifest_path and f.content == MANIFEST for f in plan.files)
    if definition.manifest_via == "developer-instructions":
        [override] = [a for a in plan.argv if a.startswith("developer_instructions=")]
        assert tomllib.loads(override)["developer_instructions"] == MANIFEST
    elif definition.manifest_via != "file":
        assert any(MANIFEST in arg for arg in plan.argv), "the manifest is one argument, never split or quoted"
    # The maestro server reaches the CLI (a script agent starts its own from the environment).
    for config in server_configs(plan):
        command = [config["command"], *config["args"]]
        if definition.adapter == "gemini":  # a portable entry: the command comes from the environment
            assert command == ["${MAESTRO_SERVE:-maestro}", "serve"]
            assert Path(plan.env["MAESTRO_SERVE"]).name == "maestro"
        else:
            assert command == SERVER
    assert server_configs(plan) or definition.adapter == "script"
    # Files only under the project's .maestro/ or in the worker's own workspace.
    for f in plan.files:
        assert Path(f.path).is_relative_to(tmp_path / ".maestro") or Path(f.path).is_relative_to(tmp_path / "ws")
    assert plan.log_path == str(tmp_path / ".maestro" / "logs" / "w1.log")


@pytest.mark.parametrize("name", ["claude", "codex", "gemini"])
def test_a_model_is_passed_only_when_one_is_asked_for(tmp_path: Path, name: str) -> None:
    assert "o3-mini" not in plan_for(name, tmp_path).argv
    with_model = plan_for(name, tmp_path, model="o3-mini").argv
    assert "o3-mini" in with_model
    assert with_model[with_model.index("o3-mini") - 1] in definitions.load(name, tmp_path).model_args


def test_a_script_agent_runs_its_file_with_maestros_own_interpreter(tmp_path: Path) -> None:
    plan = plan_for("script", tmp_path, model="ignored")

    assert plan.argv == [sys.executable, str(tmp_path / "agent.py")]
    assert [f.path for f in plan.files] == [plan.manifest_path]


def test_a_project_launcher_overrides_the_built_in_one(tmp_path: Path) -> None:
    own = tmp_path / ".maestro" / "launchers" / "claude.toml"
    own.parent.mkdir(parents=True)
    own.write_text(
        'description = "our wrapper"\nbinary = "our-claude"\nadapter = "claude"\nmanifest_via = "system-prompt"\n'
        'prompt = "go"\n[headless]\nargv = ["{binary}", "--config", "{mcp_config}", "{manifest}", "{prompt}"]\n'
    )

    plan = plan_for("claude", tmp_path)

    assert plan.argv == [
        "our-claude",
        "--config",
        str(tmp_path / ".maestro" / "mcp" / "w1.claude.json"),
        MANIFEST,
        "go",
    ]
    assert definitions.available(tmp_path)["claude"] == own
