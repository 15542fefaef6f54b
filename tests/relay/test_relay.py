"""The relay between a headless CLI and the store, as real processes: a real `python -m maestro_mcp.relay`
runs fake_cli.py (a CLI printing Claude- or Codex-shaped events) against a real SQLite store."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import pytest

from maestro_mcp.ids import new_id
from maestro_mcp.models import (
    ActivityKind,
    MessageType,
    NewTask,
    Role,
    SessionRecord,
    SessionStatus,
    TaskStatus,
    now,
)
from maestro_mcp.store import Store, create_store, mail_topic

pytestmark = pytest.mark.anyio

FAKE = str(Path(__file__).with_name("fake_cli.py"))
WAIT_S = 30


@dataclass
class Project:
    root: Path
    db: str
    store: Store
    coordinator: SessionRecord
    worker: SessionRecord

    @property
    def log(self) -> Path:
        return self.root / ".maestro" / "logs" / "w.log"

    def argv(self, scenario: str, arg: str = "", cli: str = "claude") -> list[str]:
        relay = [sys.executable, "-m", "maestro_mcp.relay", "--cli", cli, "--root", str(self.root)]
        return [*relay, "--log", str(self.log), "--", sys.executable, FAKE, scenario, *([arg] if arg else [])]

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "MAESTRO_DB": self.db, "MAESTRO_SESSION": self.worker.id, **extra}

    async def run(self, scenario: str, arg: str = "", cli: str = "claude", **env: str) -> int:
        with anyio.fail_after(WAIT_S):
            done = await anyio.run_process(self.argv(scenario, arg, cli), env=self.env(**env), check=False)
        return done.returncode

    async def start(self, scenario: str, arg: str = "", **env: str) -> anyio.abc.Process:
        return await anyio.open_process(self.argv(scenario, arg), env=self.env(**env), start_new_session=True)

    async def events_to_coordinator(self, count: int) -> list[str]:
        return await self.events_to(self.coordinator.id, count)

    async def events_to(self, session_id: str, count: int) -> list[str]:
        """Wait for `count` event mails to the session; their subjects and bodies."""
        async with self.store.subscribe(mail_topic(session_id)) as bell:
            with anyio.fail_after(WAIT_S):
                while True:
                    found = [
                        f"{m.subject}: {m.body}"
                        for m in await self.store.peek_unread(session_id, 100)
                        if m.type is MessageType.event
                    ]
                    if len(found) >= count:
                        return found
                    await bell.wait(0.5)


def record(name: str, role: Role, parent: str | None = None) -> SessionRecord:
    ts = now()
    return SessionRecord(
        id=new_id("s"), name=name, role=role, agent="claude", parent_id=parent, status=SessionStatus.working,
        workspace=None, pid=None, created_at=ts, last_seen_at=ts,
    )  # fmt: skip


@pytest.fixture
async def project(tmp_path: Path) -> AsyncIterator[Project]:
    (tmp_path / ".maestro").mkdir()
    db = str(tmp_path / ".maestro" / "maestro.db")
    store = create_store(db)
    await store.open()
    boss = await store.create_session(record("boss", Role.coordinator))
    worker = await store.create_session(record("w", Role.worker, boss.id))
    async with anyio.create_task_group() as tg:
        await store.listen("*", tg)  # hear the relay's wake-ups from its process
        yield Project(tmp_path, db, store, boss, worker)
        tg.cancel_scope.cancel()
    await store.close()


async def test_a_run_is_kept_raw_and_recorded_as_activity_with_its_cost(project: Project) -> None:
    [task] = await project.store.create_tasks([new_task("build")])
    await project.store.update_task(
        task.id, expect=task.status, status=TaskStatus.in_progress, assignee_id=project.worker.id
    )

    assert await project.run("work", "3") == 3, "the relay exits as the CLI did"

    kinds = [e.kind for e in await project.store.activity(project.worker.id)]
    assert kinds == [
        ActivityKind.start, ActivityKind.tool_call, ActivityKind.tool_result, ActivityKind.turn, ActivityKind.exit,
    ]  # fmt: skip
    events = await project.store.activity(project.worker.id)
    assert events[1].summary == "running pytest -q" and events[2].ok is True
    assert "code 3" in events[-1].summary
    stats = (await project.store.session_stats([project.worker.id]))[project.worker.id]
    assert (stats.usage.input_tokens, stats.usage.output_tokens, stats.usage.cached_tokens) == (1000, 200, 300)
    assert stats.usage.cost_usd == pytest.approx(0.12) and not stats.usage.cost_estimated
    assert stats.conversation_id == "conv-123"
    assert stats.skipped == 2, "a line that is not JSON and a truncated one are skipped and counted"
    [spent] = await project.store.task_usage([task.id])
    assert spent.usage.cost_usd == pytest.approx(0.12) and spent.session_id == project.worker.id
    raw = project.log.read_text()
    assert '"total_cost_usd": 0.12' in raw and "this line is not JSON" in raw


async def test_tokens_without_dollars_are_priced_as_an_estimate(project: Project) -> None:
    assert await project.run("codex", cli="codex") == 0
    stats = (await project.store.session_stats([project.worker.id]))[project.worker.id]
    assert stats.usage.input_tokens == 20_000 and stats.usage.cached_tokens == 5_000
    assert stats.usage.cost_usd > 0 and stats.usage.cost_estimated
    assert stats.conversation_id == "thread-9" and stats.doing is not None and stats.doing.startswith("exited")


async def test_secrets_are_redacted_from_activity_and_the_raw_log(project: Project) -> None:
    secret = "sk-live-0123456789abcdef"
    assert await project.run("secret", FAKE_API_KEY=secret) == 0
    summaries = " ".join(e.summary for e in await project.store.activity(project.worker.id))
    assert "curl" in summaries and secret not in summaries
    assert secret not in project.log.read_text()


async def test_a_cli_killed_by_a_signal_is_recorded_and_passed_on(project: Project) -> None:
    code = await project.run("signal")
    assert code == -signal.SIGKILL, "the relay dies by the same signal, so its waiter sees a crash"
    last = (await project.store.activity(project.worker.id))[-1]
    assert last.kind is ActivityKind.exit and "SIGKILL" in last.summary


async def test_an_unreachable_store_never_costs_the_worker(project: Project, tmp_path: Path) -> None:
    code = await project.run("work", "0", MAESTRO_DB=str(tmp_path / "no-such-dir" / "x.db"))
    assert code == 0, "the CLI ran and exited as it would have"
    assert '"total_cost_usd": 0.12' in project.log.read_text(), "its output is in the raw log"
    assert "could not record activity" in project.log.read_text(), "and the log says why nothing was recorded"


async def test_a_budget_warns_at_80_percent_and_stops_the_worker_when_spent(project: Project) -> None:
    await project.store.set_limits(project.worker.id, 0.10, None)
    warned = await project.start("spend", "0.09")
    [warning] = await project.events_to_coordinator(1)
    assert "90%" in warning and "w" in warning
    warned.send_signal(signal.SIGTERM)
    with anyio.fail_after(WAIT_S):
        assert await warned.wait() == 143, "a SIGTERM reaches the CLI, and its exit code comes back"

    stopped = await project.start("spend", "0.15")
    with anyio.fail_after(WAIT_S):
        await stopped.wait()
    session = await project.store.get_session(project.worker.id)
    assert session is not None and session.status is SessionStatus.stopped
    told = await project.events_to_coordinator(2)
    assert any("budget of $0.10" in t for t in told), told


async def test_a_silent_worker_is_reported_once_naming_its_last_action(project: Project) -> None:
    idle = await project.start("idle", MAESTRO_STALL_AFTER_S="0.5")
    try:
        [told] = await project.events_to_coordinator(1)
    finally:
        idle.send_signal(signal.SIGTERM)
        with anyio.fail_after(WAIT_S):
            await idle.wait()
    assert "silent" in told and "running sleep forever" in told


async def test_workers_and_the_operator_hear_that_their_coordinator_ended(project: Project) -> None:
    await project.store.end_session(project.coordinator.id, SessionStatus.exited, 0, max_attempts=3)
    idle = await project.start("idle", MAESTRO_STALL_AFTER_S="30")
    try:
        [to_worker] = await project.events_to(project.worker.id, 1)
        operator = await project.store.get_session("operator")
        assert operator is not None
        [to_operator] = await project.events_to(operator.id, 1)
    finally:
        idle.send_signal(signal.SIGTERM)
        with anyio.fail_after(WAIT_S):
            await idle.wait()
    assert "coordinator boss has ended" in to_worker and "report_progress" in to_worker
    assert "boss has ended" in to_operator and "w" in to_operator


async def test_the_window_stays_bounded_under_100000_events(project: Project) -> None:
    assert await project.run("chatty", "100000") == 0
    stats = (await project.store.session_stats([project.worker.id]))[project.worker.id]
    kept = await project.store.activity(project.worker.id, limit=100_000)
    assert (stats.events, stats.lost) == (100_002, 0), "a burst waits for the store rather than lose events"
    assert len(kept) <= 2000 * 1.1 and kept[-1].kind is ActivityKind.exit
    assert stats.dropped == stats.events - len(kept)


def new_task(title: str) -> NewTask:
    ts = now()
    return NewTask(
        id=new_id("t"), key=None, title=title, description="", acceptance="", priority=0, wave=0, parent_id=None,
        depends_on=[], files=[], assignee_id=None, created_by=None, status=TaskStatus.ready, created_at=ts,
    )  # fmt: skip
