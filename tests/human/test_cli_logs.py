"""`maestro logs` and `maestro respawn` as a human runs them, over a store an in-memory team works in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from human_support import amaestro

from maestro_mcp.models import ActivityBatch, ActivityKind, NewActivity, Role, Usage, now

if TYPE_CHECKING:
    from harness import Team

pytestmark = pytest.mark.anyio
# `project`: the CLI runs in the project whose store the team works in.


async def record(team: Team, name: str) -> None:
    worker = await team.store.get_session(name)
    assert worker is not None
    events = [
        NewActivity(at=now(), kind=ActivityKind.tool_call, summary="running pytest -q", tool="Bash"),
        NewActivity(at=now(), kind=ActivityKind.tool_result, summary="3 passed", ok=True),
        NewActivity(at=now(), kind=ActivityKind.turn, summary="All green."),
    ]
    spent = Usage(input_tokens=1500, cached_tokens=500, output_tokens=120, turns=2, cost_usd=0.31)
    await team.store.set_limits(worker.id, 1.0, None)
    batch = ActivityBatch(session_id=worker.id, relay="r", batch=1, events=events, usage=spent)
    await team.store.record_activity(batch)


async def test_logs_shows_a_worker_s_activity_readably_with_its_spend(project: Path, team: Team) -> None:
    await team.agent("lead")
    await team.agent("w1", Role.worker, parent="lead")
    await record(team, "w1")

    shown = await amaestro("logs", "w1")

    assert shown.code == 0, shown.output
    lines = shown.out.splitlines()
    assert lines[0].startswith("w1 (script, ") and "$0.31 of $1.00" in lines[0] and "1,500 in (500 cached)" in lines[0]
    assert "→ running pytest -q" in lines[1] and "✓ 3 passed" in lines[2] and "All green." in lines[3]


async def test_logs_json_gives_one_object_per_event(project: Path, team: Team) -> None:
    await team.agent("lead")
    await team.agent("w1", Role.worker, parent="lead")
    await record(team, "w1")

    shown = await amaestro("logs", "w1", "--json", "-n", "2")

    events = [json.loads(line) for line in shown.out.splitlines()]
    assert [(e["seq"], e["kind"]) for e in events] == [(2, "tool_result"), (3, "turn")]


async def test_logs_and_respawn_of_an_unknown_or_live_worker_say_what_to_do(project: Path, team: Team) -> None:
    await team.agent("lead")
    await team.agent("w1", Role.worker, parent="lead")

    unknown = await amaestro("logs", "nobody")
    assert unknown.code == 1 and "No session 'nobody'" in unknown.err and "maestro sessions" in unknown.err
    live = await amaestro("respawn", "w1")
    assert live.code == 1 and "w1 is live" in live.err
    no_log = await amaestro("logs", "w1", "--raw")
    assert no_log.code == 1 and "has no log file" in no_log.err
