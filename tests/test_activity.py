"""Each CLI's structured output, as the real CLIs printed it (tests/fixtures/output/), parsed into one
normalised activity stream: tool calls with what they do, results, turns, usage as increments, and the
CLI's conversation id for a later resume. What cannot be read is skipped and counted, never fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestro_mcp import adapters
from maestro_mcp.activity import Activity, Kind, Redactor, unwrap_shell

FIXTURES = Path(__file__).parent / "fixtures" / "output"


def parse(cli: str) -> tuple[list[Activity], int]:
    parser = adapters.load(cli, None).output_parser()
    assert parser is not None
    found: list[Activity] = []
    for line in (FIXTURES / f"{cli}.jsonl").read_text().splitlines():
        found += parser.feed(line)
    return found, parser.skipped


def kinds(found: list[Activity]) -> list[str]:
    return [a.kind.value for a in found]


def test_claude_stream_json() -> None:
    found, skipped = parse("claude")
    assert kinds(found) == ["start", "tool_call", "tool_result", "turn", "usage"]
    start, call, result, turn, usage = found
    assert start.conversation_id == "73007bfd-6df2-49dd-a777-d2a7333a75de" and start.model == "claude-opus-5-5"
    assert (call.tool, call.summary, call.turns) == ("Bash", "running touch relay-allowed", 1)
    assert result.ok is False and "permit tool exploded" in result.summary
    assert (turn.summary, turn.turns) == ("final", 1)
    # Claude's own totals for the run, with the dollars it computed.
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (2400, 600, 200)
    assert usage.cost_usd == pytest.approx(0.02164)
    assert skipped == 0


def test_codex_exec_json() -> None:
    found, skipped = parse("codex")
    assert kinds(found) == ["start"] + ["tool_call", "tool_result"] * 4 + ["turn", "usage"]
    assert found[0].conversation_id == "01a23082-a691-7cf1-9204-4d382b03aec2"
    calls = [a for a in found if a.kind is Kind.tool_call]
    results = [a for a in found if a.kind is Kind.tool_result]
    assert [c.summary for c in calls] == [
        "running echo ok-cmd",
        "running echo failing >&2; exit 3",
        "editing /home/u/project/added.txt",
        "calling tiny echo",
    ]
    assert [r.ok for r in results] == [True, False, True, True]
    usage = found[-1]
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.cost_usd) == (9872, 448, 1600, None)
    assert skipped == 3, "plain text, an unknown event type and a truncated line"


def test_gemini_stream_json() -> None:
    found, skipped = parse("gemini")
    assert kinds(found) == ["start", "tool_call", "tool_result", "tool_call", "tool_result", "tool_call",
                            "tool_result", "turn", "usage"]  # fmt: skip
    assert found[0].conversation_id == "37c238a4-8527-4e09-b682-af64fedc3d92"
    assert [a.summary for a in found if a.kind is Kind.tool_call][2] == "calling maestro mcp_maestro_echo"
    assert [a.ok for a in found if a.kind is Kind.tool_result] == [True, False, True]
    assert sum(a.turns for a in found if a.kind is Kind.turn) == 1, "one answer, in several chunks"
    usage = found[-1]
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (4800, 1200, 400)
    assert skipped == 0


def test_running_totals_become_increments() -> None:
    parser = adapters.load("codex", None).output_parser()
    assert parser is not None
    first = parser.feed('{"type":"turn.completed","usage":{"input_tokens":100,"output_tokens":10}}')
    second = parser.feed('{"type":"turn.completed","usage":{"input_tokens":250,"output_tokens":30}}')
    assert (first[0].input_tokens, second[0].input_tokens, second[0].output_tokens) == (100, 150, 20)


def test_secrets_never_reach_a_summary() -> None:
    redact = Redactor({"ANTHROPIC_API_KEY": "sk-ant-api03-abcdef123456", "PATH": "/usr/bin"})
    text = redact(
        "curl -H 'Authorization: Bearer abcdefghijklmnop123' -d key=sk-ant-api03-abcdef123456"
        " GITHUB_TOKEN=ghp_0123456789abcdefghijklmnopqrstuv AKIAABCDEFGHIJKLMNOP in /usr/bin"
    )
    assert "abcdef123456" not in text and "ghp_" not in text and "AKIA" not in text and "abcdefghijklmnop" not in text
    assert "/usr/bin" in text, "only secrets go"


def test_a_wrapped_shell_command_is_shown_as_the_command() -> None:
    assert unwrap_shell("/bin/bash -lc 'pytest -q'") == "pytest -q"
    assert unwrap_shell("pytest -q") == "pytest -q"
