"""The live view: rendered from a fixture store without a terminal, and redrawn when the store changes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest
from rich.console import Console

from maestro_mcp.models import ActivityBatch, Role, SessionStatus, Usage, now
from maestro_mcp.service import Services
from maestro_mcp.service.sessions import operator_session
from maestro_mcp.store import ALL, create_store
from maestro_mcp.view import Status, collect, follow, render

if TYPE_CHECKING:
    from harness import Team

pytestmark = pytest.mark.anyio


def as_text(status: Status, title: str = "maestro", width: int = 120) -> str:
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(render(status, title=title))
    return console.export_text()


async def populate(team: Team) -> None:
    """lead + 3 workers; 4 tasks in 3 waves (one done, one in progress); mail, an event, a directive."""
    lead = await team.agent("lead")
    w1 = await team.agent("w1", Role.worker, parent="lead")
    w2 = await team.agent("w2", Role.worker, parent="lead")
    w3 = await team.agent("w3", Role.worker, parent="lead")
    await lead.call(
        "task_create",
        tasks=[
            {"key": "model", "title": "Data model"},
            {"key": "api", "title": "HTTP API", "depends_on": ["model"]},
            {"key": "cli", "title": "CLI", "depends_on": ["model"]},
            {"key": "e2e", "title": "End-to-end", "depends_on": ["api", "cli"]},
        ],
    )
    model = (await w1.call("task_ready", claim=True))["claimed"]
    await w1.call("report_progress", kind="complete", summary="model done", task_id=model["id"])
    api = (await w2.call("task_ready", claim=True))["claimed"]
    await w2.call("report_progress", kind="progress", summary="routes half done", task_id=api["id"], percent=50)
    await w2.call("mail_send", to="siblings", subject="api shape", body="GET /keys/{k}")
    await team.services.sessions.end(w3.session, SessionStatus.failed, 3)
    operator = await operator_session(team.store)
    await team.services.steering.steer(operator, "prefer small commits", None, False)


def row_of(text: str, first: str) -> str:
    """The line of the view whose first cell (inside the panel borders) is `first`."""
    rows = [line for line in text.splitlines() if line.strip("│ ").split(" ", 1)[0] == first]
    assert len(rows) == 1, f"no single row for {first!r} in:\n{text}"
    return rows[0]


async def test_render_shows_sessions_with_status_current_task_last_report_and_unread(team: Team) -> None:
    await populate(team)
    status = await collect(team.services)

    text = as_text(status)

    lead, w1, w2, w3 = (row_of(text, name) for name in ("lead", "w1", "w2", "w3"))
    assert "coordinator" in lead
    assert "HTTP API" in w2 and "progress: routes half done" in w2 and "working" in w2
    assert "complete: model done" in w1
    assert "failed" in w3
    unread = {s["name"]: s["unread"] for s in status.to_json()["sessions"]}
    assert w1.rstrip(" │").endswith(f" {unread['w1']}"), "the unread count is the last column"
    assert unread["w1"] >= 2


async def test_a_worker_s_current_action_its_age_and_its_spend_against_its_budget_are_shown(team: Team) -> None:
    await populate(team)
    w2 = (await team.store.get_session("w2")) or pytest.fail("no w2")
    await team.store.set_limits(w2.id, 2.0, None)
    spent = Usage(input_tokens=1200, output_tokens=300, turns=3, cost_usd=0.42)
    await team.store.record_activity(
        ActivityBatch(session_id=w2.id, relay="r", batch=1, usage=spent, doing="running pytest -q", active_at=now())
    )

    status = await collect(team.services)
    text = as_text(status, width=200)

    row = row_of(text, "w2")
    assert "running pytest -q (" in row and "$0.42/$2.00" in row
    assert "spend $0.42" in text, "the footer has the team's total"
    shown = {s["name"]: s for s in status.to_json()["sessions"]}["w2"]
    assert shown["doing"] == "running pytest -q" and shown["usage"]["cost_usd"] == pytest.approx(0.42)
    assert shown["budget_usd"] == 2.0
    api = next(t for t in status.to_json()["tasks"] if t["title"] == "HTTP API")
    assert api["usage"]["input_tokens"] == 1200, "the task it has in progress is billed"


async def test_render_keeps_every_column_at_80_columns_with_long_titles(team: Team) -> None:
    await populate(team)
    w2 = await team.store.get_session("w2")
    assert w2 is not None
    await team.services.mail.send(w2, "w1", "x", subject="y")

    console = Console(record=True, width=80, file=io.StringIO(), color_system=None)
    console.print(render(await collect(team.services)))
    text = console.export_text()

    header = row_of(text, "session")
    for column in ("role", "agent", "status", "unread"):
        assert column in header, f"column {column!r} was squeezed out at 80 columns:\n{text}"


async def test_render_shows_the_plan_by_wave(team: Team) -> None:
    await populate(team)

    text = as_text(await collect(team.services))

    assert "model [done @w1]" in next(line for line in text.splitlines() if "wave 0" in line)
    wave1 = next(line for line in text.splitlines() if "wave 1" in line)
    assert "api [in_progress @w2]" in wave1 and "cli [ready]" in wave1
    assert "e2e [pending]" in next(line for line in text.splitlines() if "wave 2" in line)


async def test_render_shows_the_latest_mail_steering_and_counts(team: Team) -> None:
    await populate(team)
    status = await collect(team.services)

    text = as_text(status, title="my team")

    assert "my team" in text
    assert "[message] w2 → w1:sent, w3:sent: api shape" in text
    assert "[directive] operator →" in text
    assert "operator steering" in text and "prefer small commits" in text
    c = status.counts
    assert f"tasks 1/4 done · messages {c['messages']}" in text
    assert f"reports {c['reports']}" in text


async def test_render_of_an_empty_store(team: Team) -> None:
    text = as_text(await collect(team.services))

    assert "sessions" in text and "plan by wave" in text and "latest mail" in text
    assert "tasks 0/0 done · messages 0" in text
    assert "operator steering" not in text


async def test_follow_redraws_when_another_process_changes_the_store(team: Team) -> None:
    """The watcher's own store connection hears the writer's commit through the notifier; with a
    refresh period of an hour, only that wake-up can bring the change in time."""
    lead = await team.agent("lead")
    await team.agent("w1", Role.worker, parent="lead")
    watcher = create_store(team.location)
    await watcher.open()
    seen: list[Status] = []
    changed, first = anyio.Event(), anyio.Event()

    def show(status: Status) -> None:
        seen.append(status)
        first.set()
        if any(m.subject == "rebase please" for m in status.messages):
            changed.set()

    try:
        async with anyio.create_task_group() as tg:
            await watcher.listen(ALL, tg)
            tg.start_soon(lambda: follow(Services.create(watcher), show, until=changed, refresh_s=3600, pace_s=0))
            with anyio.fail_after(10):
                await first.wait()
            assert [s.name for s in seen[0].sessions] == ["lead", "w1"]

            await lead.call("mail_send", to="w1", subject="rebase please", body="main moved")

            with anyio.fail_after(10):
                await changed.wait()
            tg.cancel_scope.cancel()
    finally:
        await watcher.close()
    assert seen[-1].counts["messages"] == 1


async def test_follow_returns_once_until_is_set(team: Team) -> None:
    done = anyio.Event()
    shown: list[int] = []

    def show(status: Status) -> None:
        shown.append(len(status.sessions))
        done.set()

    with anyio.fail_after(10):
        await follow(team.services, show, until=done, refresh_s=3600, pace_s=0)
    assert shown == [0]


async def test_collect_current_task_and_unread_are_per_session(team: Team, project: Path) -> None:
    await populate(team)

    status = await collect(team.services)

    data = {s["name"]: s for s in status.to_json()["sessions"]}
    assert data["w2"]["current_task"] is not None and "HTTP API" in data["w2"]["current_task"]
    assert data["w1"]["current_task"] is None
    assert data["w1"]["unread"] >= 2  # the sibling mail and the directive
    assert data["w3"]["unread"] == 1  # the sibling mail; it had ended before the directive
