"""The permission policy: what a worker may run without asking, what it may never do, and what goes to
its team. Rules are CLI-neutral; the adapters translate their CLI's tool calls to `ToolCall`."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro_mcp.errors import InvalidArgument
from maestro_mcp.policy import (
    Decision,
    PolicyError,
    ToolCall,
    builtin_policy,
    load_policy,
    parse_policy,
    parse_rule,
    remembered_rule,
)

WS = Path("/proj/ws")


def run(command: str, profile: str | None = "dev") -> Decision:
    return builtin_policy().for_profile(profile).decide(ToolCall("run", "Bash", command), WS).decision


@pytest.mark.parametrize(
    "command", ["pytest -q tests/", "python -m pytest", "FOO=1 make test", "git status | head -3", "cd src && ruff ."]
)
def test_a_dev_worker_may_run_the_projects_test_and_build_commands(command: str) -> None:
    assert run(command) is Decision.allow


@pytest.mark.parametrize(
    "command",
    ["git push origin main", "curl https://example.com", "pip install requests", "sudo ls", "ls; git push -f"],
)
def test_nobody_may_push_or_reach_the_network_by_default(command: str) -> None:
    assert run(command) is Decision.deny
    assert run(command, None) is Decision.deny


@pytest.mark.parametrize("command", ["rm -rf /etc", "rm ../outside.txt", "mv src ~/elsewhere", "ls && rm -r /tmp/x"])
def test_deleting_or_moving_outside_the_workspace_is_refused_whatever_the_rules_say(command: str) -> None:
    everything = parse_policy('inherit = false\n[default]\nallow = ["run"]\n', "p.toml").for_profile(None)
    verdict = everything.decide(ToolCall("run", "Bash", command), WS)
    assert verdict.decision is Decision.deny and "outside the workspace" in verdict.reason


@pytest.mark.parametrize("command", ["touch relay-allowed", "python3 tool.py", "rm -rf build", "echo $(id)"])
def test_what_no_rule_decides_goes_to_the_team(command: str) -> None:
    verdict = builtin_policy().for_profile("dev").decide(ToolCall("run", "Bash", command), WS)
    assert verdict.decision is Decision.ask and verdict.reason


def test_a_test_runner_allowed_does_not_let_a_chained_command_through() -> None:
    assert run("pytest && python3 evil.py") is Decision.ask
    assert run("pytest && git push") is Decision.deny


def test_the_most_specific_rule_decides_and_deny_wins_a_tie() -> None:
    policy = parse_policy(
        '[default]\nallow = ["run:npm install", "run"]\ndeny = ["run:git push", "network"]\n', "p.toml"
    ).for_profile(None)
    assert policy.decide(ToolCall("run", "Bash", "npm install left-pad"), WS).decision is Decision.allow
    assert policy.decide(ToolCall("run", "Bash", "git push"), WS).decision is Decision.deny
    assert policy.decide(ToolCall("run", "Bash", "curl x"), WS).decision is Decision.deny  # run vs network: a tie
    assert policy.decide(ToolCall("run", "Bash", "python3 x.py"), WS).decision is Decision.allow


def test_reading_and_editing_inside_the_workspace_are_allowed_and_edits_outside_are_asked() -> None:
    rules = builtin_policy().for_profile(None)
    assert rules.decide(ToolCall("read", "Read", paths=("/proj/ws/a.py",)), WS).decision is Decision.allow
    assert rules.decide(ToolCall("edit", "Edit", paths=("src/a.py",)), WS).decision is Decision.allow
    outside = rules.decide(ToolCall("edit", "Write", paths=("/etc/passwd",)), WS)
    assert outside.decision is Decision.ask and "/etc/passwd" in outside.reason
    assert rules.decide(ToolCall("network", "WebFetch"), WS).decision is Decision.deny
    assert rules.decide(ToolCall("maestro", "mcp__maestro__mail_send"), WS).decision is Decision.allow


def test_a_review_profile_may_not_edit() -> None:
    rules = builtin_policy().for_profile("review")
    assert rules.decide(ToolCall("edit", "Edit", paths=("a.py",)), WS).decision is Decision.deny


def test_a_project_policy_file_adds_to_the_built_in_rules(tmp_path: Path) -> None:
    (tmp_path / ".maestro").mkdir()
    (tmp_path / ".maestro" / "policy.toml").write_text(
        'approval_timeout_s = 30\n\n[profiles.dev]\nallow = ["run:touch relay"]\n', encoding="utf-8"
    )
    policy = load_policy(tmp_path)
    rules = policy.for_profile("dev")
    assert rules.approval_timeout_s == 30
    assert rules.decide(ToolCall("run", "Bash", "touch relay-x"), WS).decision is Decision.ask
    assert rules.decide(ToolCall("run", "Bash", "touch relay x"), WS).decision is Decision.allow
    assert rules.decide(ToolCall("run", "Bash", "pytest"), WS).decision is Decision.allow  # inherited
    assert load_policy(tmp_path / "nowhere").source == "built-in defaults"


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ('[default]\nallow = ["read", "bogus"]\n', "p.toml:2", "default.allow[1]"),
        ('[profiles.dev]\ndeny = "network"\n', "p.toml:2", "profiles.dev.deny"),
        ('\n[profiles.dev]\nalow = ["read"]\n', "p.toml:3", "profiles.dev.alow"),
        ("approval_timeout_s = -1\n", "p.toml:1", "approval_timeout_s"),
        ("aproval = 3\n", "p.toml:1", "aproval"),
        ('[default]\nallow = ["read:x"]\n', "p.toml:2", "default.allow[0]"),
        ("[default\nallow = []\n", "p.toml:1", "not valid TOML"),
    ],
)
def test_a_policy_file_with_an_error_names_the_file_line_and_field(text: str, where: str, what: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.toml")
    message = str(info.value)
    assert message.startswith(where + ":"), message
    assert what in message
    assert "\n" not in message


def test_rules_are_checked_when_parsed() -> None:
    assert parse_rule("run:git push").arg == ("git", "push")
    with pytest.raises(InvalidArgument, match="needs a name"):
        parse_rule("tool:")


def test_a_remembered_decision_covers_the_program_or_its_subcommand() -> None:
    assert remembered_rule(ToolCall("run", "Bash", "touch relay-allowed")) == "run:touch"
    assert remembered_rule(ToolCall("run", "Bash", "git push -f origin")) == "run:git push"
    assert remembered_rule(ToolCall("network", "WebFetch")) == "network"
    assert remembered_rule(ToolCall("mcp", "mcp__gh__issue", server="gh")) == "mcp:gh"
