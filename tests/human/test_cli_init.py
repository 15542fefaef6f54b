"""`maestro init`: the store, and each agent CLI's project MCP config, merged into what the user already has."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from human_support import maestro

CONFIGS = (".mcp.json", ".claude/settings.local.json", ".gemini/settings.json", ".codex/config.toml")


def read_json(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_init_creates_the_store_and_every_agent_clis_project_config(project: Path) -> None:
    result = maestro("init")

    assert result.code == 0, result.output
    assert (project / ".maestro" / "maestro.db").is_file()
    assert "schema version" in result.out
    for rel in CONFIGS:
        assert (project / rel).is_file(), f"init did not write {rel}"
        assert rel in result.out
    claude = read_json(project / ".mcp.json")["mcpServers"]
    gemini = read_json(project / ".gemini" / "settings.json")["mcpServers"]
    assert isinstance(claude, dict) and isinstance(gemini, dict)
    for server in (claude["maestro"], gemini["maestro"]):
        assert "serve" in [server["command"], *server["args"]]
    assert read_json(project / ".claude" / "settings.local.json")["enabledMcpjsonServers"] == ["maestro"]
    codex = tomllib.loads((project / ".codex" / "config.toml").read_text(encoding="utf-8"))
    assert "serve" in [codex["mcp_servers"]["maestro"]["command"], *codex["mcp_servers"]["maestro"]["args"]]


def test_init_merges_into_the_users_json_settings_without_clobbering_other_keys(project: Path) -> None:
    (project / ".claude").mkdir()
    (project / ".gemini").mkdir()
    (project / ".mcp.json").write_text(json.dumps({"mcpServers": {"github": {"command": "gh-mcp"}}, "x": 1}))
    (project / ".claude" / "settings.local.json").write_text(
        json.dumps({"enabledMcpjsonServers": ["github"], "permissions": {"allow": ["Bash(ls)"]}})
    )
    mine = {"matcher": ".*", "hooks": [{"type": "command", "name": "lint", "command": "my-lint"}]}
    (project / ".gemini" / "settings.json").write_text(
        json.dumps(
            {
                "theme": "dark",
                "mcpServers": {"maestro": {"command": "old", "env": {"K": "v"}}},
                "hooks": {"AfterTool": [mine]},
            }
        )
    )

    result = maestro("init")

    assert result.code == 0, result.output
    mcp = read_json(project / ".mcp.json")
    assert mcp["x"] == 1
    assert mcp["mcpServers"] == {"github": {"command": "gh-mcp"}, "maestro": mcp["mcpServers"]["maestro"]}  # type: ignore[index]
    claude = read_json(project / ".claude" / "settings.local.json")
    assert claude["enabledMcpjsonServers"] == ["github", "maestro"]
    assert claude["permissions"] == {"allow": ["Bash(ls)"]}
    gemini = read_json(project / ".gemini" / "settings.json")
    assert gemini["theme"] == "dark"
    maestro_server = gemini["mcpServers"]["maestro"]  # type: ignore[index]
    assert maestro_server["command"] != "old"
    assert maestro_server["env"]["K"] == "v", "the user's own setting on the server entry was dropped"
    assert maestro_server["env"]["MAESTRO_TOKEN"] == "${MAESTRO_TOKEN:-}"
    after_tool = gemini["hooks"]["AfterTool"]  # type: ignore[index]
    assert after_tool[0] == mine and after_tool[1]["hooks"][0]["name"] == "maestro-AfterTool", after_tool
    # Running init again keeps one maestro hook, not two.
    assert maestro("init").code == 0
    again = read_json(project / ".gemini" / "settings.json")["hooks"]["AfterTool"]  # type: ignore[index]
    assert again == after_tool


def test_init_never_overwrites_an_existing_codex_toml_and_says_what_to_add(project: Path) -> None:
    (project / ".codex").mkdir()
    mine = '# my codex settings\nmodel = "o3"\n'
    (project / ".codex" / "config.toml").write_text(mine)

    result = maestro("init")

    assert result.code == 0, result.output
    assert (project / ".codex" / "config.toml").read_text() == mine
    assert "[mcp_servers.maestro]" in result.out
    assert "(claude, gemini) now have the maestro tools" in result.out


def test_init_twice_changes_nothing_the_second_time(project: Path) -> None:
    assert maestro("init").code == 0
    before = {rel: (project / rel).read_bytes() for rel in CONFIGS}

    again = maestro("init")

    assert again.code == 0, again.output
    assert {rel: (project / rel).read_bytes() for rel in CONFIGS} == before
    assert "already configured" in again.out


def test_init_leaves_a_settings_file_that_is_not_json_alone_and_says_so(project: Path) -> None:
    (project / ".gemini").mkdir()
    broken = '{"theme": "dark", // a comment\n}'
    (project / ".gemini" / "settings.json").write_text(broken)

    result = maestro("init")

    assert result.code != 0
    assert ".gemini/settings.json" in result.err
    assert "Traceback" not in result.output
    assert (project / ".gemini" / "settings.json").read_text() == broken
    assert (project / ".maestro" / "maestro.db").is_file(), "the store is still created"


def test_init_with_maestro_db_puts_the_store_there(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere" / "team.location"
    monkeypatch.setenv("MAESTRO_DB", str(elsewhere))

    result = maestro("init", "--no-configs")

    assert result.code == 0, result.output
    assert elsewhere.is_file()
    assert not (project / ".maestro" / "maestro.db").exists()
    assert not (project / ".mcp.json").exists()


def test_init_keeps_maestros_state_out_of_git_but_not_the_projects_policy(project: Path) -> None:
    import subprocess

    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / ".maestro" / "launchers").mkdir(parents=True)
    (project / ".maestro" / "launchers" / "ours.toml").write_text("x = 1\n")
    (project / ".maestro" / "policy.toml").write_text("[default]\n")

    assert maestro("init").code == 0
    (project / ".maestro" / "logs").mkdir(exist_ok=True)
    (project / ".maestro" / "logs" / "w1.log").write_text("secret output\n")

    listed = subprocess.run(
        ["git", "-C", str(project), "ls-files", "--others", "--exclude-standard", ".maestro"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert sorted(listed) == [".maestro/launchers/ours.toml", ".maestro/policy.toml"]


@pytest.mark.parametrize("command", [["launch", "claude"], ["team", "--agent", "claude"], ["status"], ["watch"]])
def test_launch_and_status_agree_a_project_without_a_store_needs_init(project: Path, command: list[str]) -> None:
    result = maestro(*command)
    assert result.code == 1, result.output
    assert "No maestro store found" in result.err and "maestro init" in result.err
    assert not (project / ".maestro").exists(), "nothing was created"
