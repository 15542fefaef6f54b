"""Store contract, activity: windows, usage, limits and spend per task, the same on every backend."""

from __future__ import annotations

import anyio
import pytest
from store_builders import task
from storekit import Maker, StoreKit

from maestro_mcp.models import ActivityBatch, ActivityKind, NewActivity, SessionStatus, TaskStatus, Usage, now
from maestro_mcp.store import Store

pytestmark = pytest.mark.anyio


def calls(n: int, start: int = 0) -> list[NewActivity]:
    return [NewActivity(at=now(), kind=ActivityKind.tool_call, summary=f"running step {start + i}") for i in range(n)]


async def test_events_are_numbered_and_read_back_in_order(store: Store, make_session: Maker) -> None:
    w = await make_session("w")
    await store.record_activity(ActivityBatch(session_id=w.id, relay="r", batch=1, events=calls(3)))
    await store.record_activity(ActivityBatch(session_id=w.id, relay="r", batch=2, events=calls(2, 3)))

    events = await store.activity(w.id)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert [e.summary for e in events][-1] == "running step 4"
    assert [e.seq for e in await store.activity(w.id, after=3)] == [4, 5]
    assert [e.seq for e in await store.last_activity(w.id, 2)] == [4, 5]


async def test_a_batch_retried_after_a_lost_commit_counts_once(store: Store, make_session: Maker) -> None:
    w = await make_session("w")
    batch = ActivityBatch(session_id=w.id, relay="r", batch=1, events=calls(2), usage=Usage(input_tokens=10))
    await store.record_activity(batch)
    stats = await store.record_activity(batch)

    assert stats.events == 2 and stats.usage.input_tokens == 10
    # A new relay (a respawn) numbers its batches from 1 again, and is recorded.
    again = await store.record_activity(batch.model_copy(update={"relay": "r2"}))
    assert again.events == 4 and again.usage.input_tokens == 20


async def test_the_window_stays_bounded_and_counts_what_it_dropped(store: Store, make_session: Maker) -> None:
    w = await make_session("w")
    for n in range(1, 31):
        await store.record_activity(ActivityBatch(session_id=w.id, relay="r", batch=n, events=calls(10), window=50))

    stats = (await store.session_stats([w.id]))[w.id]
    kept = await store.activity(w.id, limit=1000)
    assert stats.events == 300
    assert 50 <= len(kept) <= 55, "the window is about its size, never the whole history"
    assert stats.dropped == 300 - len(kept) and kept[-1].seq == 300


async def test_usage_adds_up_per_session_and_for_the_task_in_progress(store: Store, make_session: Maker) -> None:
    w = await make_session("w")
    [t] = await store.create_tasks([task("build it")])
    await store.update_task(t.id, expect=t.status, status=TaskStatus.in_progress, assignee_id=w.id)
    spend = Usage(input_tokens=100, output_tokens=20, cached_tokens=50, turns=1, cost_usd=0.25)
    await store.record_activity(ActivityBatch(session_id=w.id, relay="r", batch=1, usage=spend))
    await store.record_activity(ActivityBatch(session_id=w.id, relay="r", batch=2, usage=spend))

    stats = (await store.session_stats([w.id]))[w.id]
    assert stats.usage == Usage(input_tokens=200, output_tokens=40, cached_tokens=100, turns=2, cost_usd=0.5)
    [per_task] = await store.task_usage([t.id])
    assert per_task.session_id == w.id and per_task.usage == stats.usage


async def test_estimated_dollars_stay_marked_as_estimates(store: Store, make_session: Maker) -> None:
    w = await make_session("w")
    await store.record_activity(
        ActivityBatch(session_id=w.id, relay="r", batch=1, usage=Usage(cost_usd=0.1, cost_estimated=True))
    )
    await store.record_activity(ActivityBatch(session_id=w.id, relay="r", batch=2, usage=Usage(cost_usd=0.1)))
    assert (await store.session_stats([w.id]))[w.id].usage.cost_estimated


async def test_the_current_action_and_conversation_are_kept(store: Store, make_session: Maker) -> None:
    w = await make_session("w")
    await store.record_activity(
        ActivityBatch(
            session_id=w.id,
            relay="r",
            batch=1,
            events=calls(1),
            doing="running pytest -q",
            conversation_id="conv-1",
            active_at=now(),
        )
    )
    await store.record_activity(ActivityBatch(session_id=w.id, relay="r", batch=2))
    stats = (await store.session_stats([w.id]))[w.id]
    assert stats.doing == "running pytest -q" and stats.doing_at is not None
    assert stats.conversation_id == "conv-1" and stats.active_at is not None


async def test_one_of_racing_noticers_tells_of_a_budget_or_a_silence(kit: StoreKit, make_session: Maker) -> None:
    w = await make_session("w")
    stores = [await kit.open() for _ in range(4)]
    await stores[0].set_limits(w.id, 1.0, None)
    warned: list[bool] = []
    noticed: list[bool] = []

    async def race(s: Store) -> None:
        warned.append(await s.warn_budget(w.id))
        noticed.append(await s.notice_silence(w.id, since=100.0))

    async with anyio.create_task_group() as tg:
        for s in stores:
            tg.start_soon(race, s)
    assert warned.count(True) == 1 and noticed.count(True) == 1
    assert not await stores[0].notice_silence(w.id, since=100.0), "the same silence is told once"
    await stores[0].record_activity(ActivityBatch(session_id=w.id, relay="r", batch=1, active_at=now()))
    assert await stores[0].notice_silence(w.id, since=now()), "a new silence, after activity, is told again"
    await stores[0].set_limits(w.id, 2.0, None)
    assert await stores[0].warn_budget(w.id), "a new budget warns again"


async def test_a_respawned_worker_takes_back_its_unclaimed_tasks(store: Store, make_session: Maker) -> None:
    w = await make_session("w")
    other = await make_session("other")
    a, b = await store.create_tasks([task("a"), task("b")])
    for t in (a, b):
        await store.update_task(t.id, expect=t.status, status=TaskStatus.in_progress, assignee_id=w.id)
    ending = await store.end_session(w.id, SessionStatus.failed, -9, max_attempts=3)
    assert ending is not None and {t.id for t in ending.released} == {a.id, b.id}
    await store.claim_task(other.id, 1)  # someone else took one of them meanwhile

    back = await store.take_back_tasks(w.id)

    assert len(back) == 1 and back[0].assignee_id == w.id and back[0].status is TaskStatus.ready
    assert await store.take_back_tasks(w.id) == []


async def test_launch_and_limits_are_remembered_for_a_respawn(store: Store, make_session: Maker) -> None:
    w = await make_session("w")
    await store.set_launch(w.id, {"agent": "claude", "model": "opus"}, "conv-9")
    await store.set_limits(w.id, 2.5, 40)
    restarted = await store.count_restart(w.id)
    assert restarted.launch == {"agent": "claude", "model": "opus"} and restarted.conversation_id == "conv-9"
    assert restarted.budget_usd == 2.5 and restarted.max_turns == 40 and restarted.restarts == 1
