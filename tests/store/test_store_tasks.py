"""Store contract, tasks: batches, readiness, claims under concurrency, conditional updates, release."""

from __future__ import annotations

import anyio
import pytest
from store_builders import session_record, task
from storekit import Maker, StoreKit

from maestro_mcp.errors import Conflict, NotFound
from maestro_mcp.ids import new_id
from maestro_mcp.models import (
    ApprovalRecord,
    ApprovalStatus,
    MessageType,
    NewMessage,
    Priority,
    ReportKind,
    ReportRecord,
    Role,
    SessionEnding,
    SessionStatus,
    TaskRecord,
    TaskStatus,
    now,
)
from maestro_mcp.store import Store

pytestmark = pytest.mark.anyio


async def statuses(store: Store) -> dict[str, TaskStatus]:
    return {t.title: t.status for t in await store.list_tasks()}


async def test_a_batch_is_stored_with_its_edges_and_derived_statuses(store: Store, make_session: Maker) -> None:
    boss = await make_session("boss")
    a = task("a", created_by=boss.id, files=["src/a.py"], acceptance="tests pass", priority=2)
    b = task("b", depends_on=[a])
    c = task("c", depends_on=[a, b], parent_id=a.id)

    created = await store.create_tasks([a, b, c])

    assert [t.id for t in created] == [a.id, b.id, c.id]
    by_id = {t.id: t for t in created}
    assert by_id[a.id].status is TaskStatus.ready
    assert by_id[a.id].files == ["src/a.py"] and by_id[a.id].acceptance == "tests pass"
    assert by_id[a.id].created_by == boss.id and by_id[a.id].priority == 2
    assert by_id[b.id].status is TaskStatus.pending and by_id[b.id].depends_on == [a.id]
    assert sorted(by_id[c.id].depends_on) == sorted([a.id, b.id]) and by_id[c.id].wave == 2
    assert by_id[c.id].parent_id == a.id
    assert await store.get_task(b.id) == by_id[b.id]
    assert await store.get_tasks([c.id, "t-missing", a.id]) == {a.id: by_id[a.id], c.id: by_id[c.id]}
    assert await store.get_task("t-missing") is None


async def test_a_batch_that_cannot_be_stored_whole_stores_nothing(store: Store) -> None:
    good = task("good")
    broken = task("broken", depends_on=[task("never stored")])

    with pytest.raises(Exception):  # noqa: B017 - each backend raises its own integrity error
        await store.create_tasks([good, broken])

    assert await store.list_tasks() == []


async def test_list_tasks_orders_by_wave_then_priority_then_age_and_filters(store: Store, make_session: Maker) -> None:
    worker = await make_session("worker")
    a = task("a")
    b = task("b", priority=5)
    c = task("c", depends_on=[a])
    d = task("d", parent_id=a.id)
    await store.create_tasks([a, b, c, d])
    await store.claim_task(worker.id, 10)  # takes b, the highest priority

    assert [t.title for t in await store.list_tasks()] == ["b", "a", "d", "c"]
    assert [t.title for t in await store.list_tasks(status=TaskStatus.ready)] == ["a", "d"]
    assert [t.title for t in await store.list_tasks(assignee_id=worker.id)] == ["b"]
    assert [t.title for t in await store.list_tasks(parent_id=a.id)] == ["d"]


async def test_ready_tasks_are_unassigned_or_assigned_to_the_caller(store: Store, make_session: Maker) -> None:
    mine, theirs = await make_session("mine"), await make_session("theirs")
    await store.create_tasks(
        [task("free"), task("for me", assignee_id=mine.id, priority=1), task("for them", assignee_id=theirs.id)]
    )

    assert [t.title for t in await store.ready_tasks(mine.id, 10)] == ["for me", "free"]
    assert [t.title for t in await store.ready_tasks(mine.id, 1)] == ["for me"]


async def test_a_claim_takes_the_first_ready_task_and_says_what_else_is_ready(
    store: Store, make_session: Maker
) -> None:
    worker = await make_session("worker")
    await store.create_tasks([task("first"), task("urgent", priority=9), task("second")])

    outcome = await store.claim_task(worker.id, 10)

    assert outcome.claimed is not None and outcome.claimed.title == "urgent"
    assert outcome.claimed.status is TaskStatus.in_progress
    assert outcome.claimed.assignee_id == worker.id and outcome.claimed.attempts == 1
    assert [t.title for t in outcome.ready] == ["first", "second"]


async def test_what_else_is_ready_comes_in_claim_order(store: Store, make_session: Maker) -> None:
    worker = await make_session("worker")
    await store.create_tasks([task("low"), task("high", priority=5), task("mid", priority=3), task("low too")])

    outcome = await store.claim_task(worker.id, 2)

    assert outcome.claimed is not None and outcome.claimed.title == "high"
    assert [t.title for t in outcome.ready] == ["mid", "low"]


async def test_a_claim_skips_a_task_whose_files_overlap_work_in_progress(store: Store, make_session: Maker) -> None:
    one, two = await make_session("one"), await make_session("two")
    await store.create_tasks(
        [task("edit a", files=["src/a.py"], priority=2), task("edit src", files=["src/"], priority=1), task("docs")]
    )
    assert (first := (await store.claim_task(one.id, 10)).claimed) is not None and first.title == "edit a"

    outcome = await store.claim_task(two.id, 10)

    assert outcome.claimed is not None and outcome.claimed.title == "docs"
    assert len(outcome.skipped) == 1 and "src/a.py" in outcome.skipped[0] and "one" in outcome.skipped[0]


async def test_with_many_concurrent_claimers_each_task_is_claimed_exactly_once(
    kit: StoreKit, store: Store, make_session: Maker
) -> None:
    workers = [await make_session(f"w{i}") for i in range(8)]
    tasks = [task(f"t{i}") for i in range(30)]
    await store.create_tasks(tasks)
    stores = [store, *[await kit.open() for _ in range(7)]]  # eight "processes"
    claims: list[tuple[str, TaskRecord]] = []

    async def claimer(s: Store, worker_id: str) -> None:
        while True:
            outcome = await s.claim_task(worker_id, 5)
            if outcome.claimed is None:
                return
            claims.append((worker_id, outcome.claimed))

    async with anyio.create_task_group() as tg:
        for i, worker in enumerate(workers):
            tg.start_soon(claimer, stores[i], worker.id)
            tg.start_soon(claimer, stores[(i + 1) % len(stores)], worker.id)

    assert sorted(t.id for _, t in claims) == sorted(t.id for t in tasks)
    stored = {t.id: t for t in await store.list_tasks()}
    for worker_id, claimed in claims:
        assert stored[claimed.id].assignee_id == worker_id and stored[claimed.id].attempts == 1


async def test_update_applies_only_while_the_task_has_the_expected_status(store: Store, make_session: Maker) -> None:
    worker = await make_session("worker")
    a = task("a")
    await store.create_tasks([a])
    await store.claim_task(worker.id, 1)

    with pytest.raises(Conflict, match="in_progress"):
        await store.update_task(a.id, expect=TaskStatus.ready, status=TaskStatus.done, result="no")
    unchanged = await store.get_task(a.id)
    assert unchanged is not None and unchanged.status is TaskStatus.in_progress and unchanged.result is None

    change = await store.update_task(
        a.id, expect=TaskStatus.in_progress, status=TaskStatus.done, result="yes", artifacts=["out.txt"]
    )
    assert change.task.status is TaskStatus.done and change.task.result == "yes"
    assert change.task.artifacts == ["out.txt"]
    with pytest.raises(NotFound):
        await store.update_task("t-missing", expect=TaskStatus.ready, status=TaskStatus.done)


async def test_concurrent_conditional_updates_have_one_winner(kit: StoreKit, store: Store, make_session: Maker) -> None:
    worker = await make_session("worker")
    a = task("a")
    await store.create_tasks([a])
    await store.claim_task(worker.id, 1)
    stores = [store, *[await kit.open() for _ in range(3)]]
    outcomes: list[str] = []

    async def finish(s: Store, result: str) -> None:
        try:
            await s.update_task(a.id, expect=TaskStatus.in_progress, status=TaskStatus.done, result=result)
            outcomes.append(result)
        except Conflict:
            outcomes.append("conflict")

    async with anyio.create_task_group() as tg:
        for i, s in enumerate(stores * 2):
            tg.start_soon(finish, s, f"r{i}")

    winners = [o for o in outcomes if o != "conflict"]
    assert len(winners) == 1 and len(outcomes) == 8
    final = await store.get_task(a.id)
    assert final is not None and final.result == winners[0]


async def test_done_readies_dependents_whose_dependencies_are_all_done(store: Store, make_session: Maker) -> None:
    worker = await make_session("worker")
    a, b = task("a"), task("b")
    c = task("c", depends_on=[a, b])
    await store.create_tasks([a, b, c])

    for t in (a, b):
        await store.update_task(t.id, expect=TaskStatus.ready, status=TaskStatus.in_progress, assignee_id=worker.id)
    first = await store.update_task(a.id, expect=TaskStatus.in_progress, status=TaskStatus.done)
    second = await store.update_task(b.id, expect=TaskStatus.in_progress, status=TaskStatus.done)

    assert first.now_ready == []
    assert [t.title for t in second.now_ready] == ["c"]
    assert (await statuses(store))["c"] is TaskStatus.ready


async def test_failure_blocks_dependents_and_a_retry_unblocks_them(store: Store) -> None:
    a = task("a")
    b = task("b", depends_on=[a])
    await store.create_tasks([a, b])
    await store.update_task(a.id, expect=TaskStatus.ready, status=TaskStatus.in_progress)

    failed = await store.update_task(a.id, expect=TaskStatus.in_progress, status=TaskStatus.failed, result="boom")
    assert [t.title for t in failed.now_blocked] == ["b"]
    blocked = await store.get_task(b.id)
    assert blocked is not None and blocked.blocked_on_deps and a.id in (blocked.blocked_reason or "")

    retried = await store.update_task(a.id, expect=TaskStatus.failed, status=TaskStatus.ready)
    assert retried.task.status is TaskStatus.ready
    assert (await statuses(store))["b"] is TaskStatus.pending


async def test_unassign_clears_the_assignee(store: Store, make_session: Maker) -> None:
    worker = await make_session("worker")
    a = task("a", assignee_id=worker.id)
    await store.create_tasks([a])

    change = await store.update_task(a.id, expect=TaskStatus.ready, unassign=True)

    assert change.task.assignee_id is None and change.task.status is TaskStatus.ready


async def test_ending_a_session_returns_its_work_to_ready_or_fails_it_after_max_attempts(
    store: Store, make_session: Maker
) -> None:
    worker, other = await make_session("worker"), await make_session("other")
    a, b, c = task("a", priority=3), task("b", priority=2), task("c", priority=1)
    d = task("d", depends_on=[b])
    await store.create_tasks([a, b, c, d])
    await store.claim_task(worker.id, 1)  # a
    await store.claim_task(worker.id, 1)  # b
    await store.claim_task(other.id, 1)  # c
    # b has been attempted before: this was its last chance.
    await store.update_task(b.id, expect=TaskStatus.in_progress, status=TaskStatus.ready, unassign=True)
    await store.claim_task(worker.id, 1)

    ending = await store.end_session(worker.id, SessionStatus.failed, -9, max_attempts=2)

    assert ending is not None and not ending.session.live
    assert {t.title: t.status for t in ending.released} == {"a": TaskStatus.ready, "b": TaskStatus.failed}
    now_stored = {t.title: t for t in await store.list_tasks()}
    assert now_stored["a"].assignee_id is None
    assert now_stored["c"].status is TaskStatus.in_progress  # someone else's work is untouched
    assert now_stored["d"].status is TaskStatus.blocked
    assert await store.end_session(worker.id, SessionStatus.failed, -9, max_attempts=2) is None, "ended once"


async def test_a_session_is_created_with_its_reserved_tasks_or_not_at_all(store: Store, make_session: Maker) -> None:
    """A spawn reserves tasks as it read them: if one moved meanwhile, no half-made worker is left."""
    other = await make_session("other")
    free, taken = task("free"), task("taken")
    await store.create_tasks([free, taken])
    seen = {t.title: t for t in await store.list_tasks()}
    await store.update_task(taken.id, expect=TaskStatus.ready, status=TaskStatus.in_progress, assignee_id=other.id)

    with pytest.raises(Conflict, match=f"Task {taken.id} is in_progress now, not ready"):
        await store.create_session(session_record("w1"), reserve=[seen["free"], seen["taken"]])

    assert await store.get_session("w1") is None
    assert (await store.get_task(free.id)).assignee_id is None  # type: ignore[union-attr]
    worker = await store.create_session(session_record("w1"), reserve=[seen["free"]])
    assert (await store.get_task(free.id)).assignee_id == worker.id  # type: ignore[union-attr]


async def test_ending_a_session_lets_go_of_its_reservations_and_requests_in_the_same_transaction(
    store: Store, make_session: Maker
) -> None:
    worker, other = await make_session("worker"), await make_session("other")
    held, reserved, finished = task("held"), task("reserved"), task("finished")
    waiting = task("waiting", depends_on=[held])
    await store.create_tasks([held, reserved, waiting, finished])
    for t in (held, finished):
        await store.update_task(t.id, expect=TaskStatus.ready, status=TaskStatus.in_progress, assignee_id=worker.id)
    await store.update_task(finished.id, expect=TaskStatus.in_progress, status=TaskStatus.done)
    for t, status in ((reserved, TaskStatus.ready), (waiting, TaskStatus.pending)):
        await store.update_task(t.id, expect=status, assignee_id=worker.id)
    ts = now()
    request = ApprovalRecord(
        id=new_id("a"), session_id=worker.id, decider_id=other.id, tool="Bash", input="pytest -q", call={},
        reason="asks", status=ApprovalStatus.pending, created_at=ts, expires_at=ts + 60,
    )  # fmt: skip
    await store.create_approval(request)

    ending = await store.end_session(worker.id, SessionStatus.failed, 1, max_attempts=3)

    assert ending is not None
    assert [t.title for t in ending.released] == ["held"]
    assert sorted(t.title for t in ending.freed) == ["reserved", "waiting"]
    assert [(r.id, r.status) for r in ending.unanswered] == [(request.id, ApprovalStatus.closed)]
    stored = {t.title: t for t in await store.list_tasks()}
    assert all(stored[k].assignee_id is None for k in ("held", "reserved", "waiting"))
    assert (stored["finished"].status, stored["finished"].assignee_id) == (TaskStatus.done, worker.id)
    assert (await store.get_approval(request.id)).status is ApprovalStatus.closed  # type: ignore[union-attr]
    back = await store.take_back_tasks(worker.id)
    assert sorted(t.title for t in back) == ["held", "reserved", "waiting"], "its respawn takes them back"


async def test_the_parent_is_told_of_an_ending_in_its_transaction_or_nothing_is_ended(
    store: Store, make_session: Maker
) -> None:
    boss = await make_session("boss", Role.coordinator)
    worker = await make_session("worker", Role.worker, boss)
    a = task("a")
    await store.create_tasks([a])
    await store.claim_task(worker.id, 1)

    def broken(ending: SessionEnding) -> NewMessage | None:
        raise RuntimeError("the teller failed")

    with pytest.raises(RuntimeError):
        await store.end_session(worker.id, SessionStatus.failed, 9, max_attempts=3, tell=broken)
    assert (await store.get_session(worker.id)).live  # type: ignore[union-attr]
    assert (await store.get_task(a.id)).assignee_id == worker.id  # type: ignore[union-attr]

    def tell(ending: SessionEnding) -> NewMessage | None:
        assert ending.parent is not None and ending.parent.id == boss.id
        released = ", ".join(t.title for t in ending.released)
        message_id = new_id("m")
        return NewMessage(
            id=message_id, thread_id=message_id, reply_to=None, sender_id=ending.session.id, subject="ended",
            body=f"released {released}", priority=Priority.high, type=MessageType.event, task_id=None,
            created_at=now(), recipient_ids=[ending.parent.id],
        )  # fmt: skip

    ending = await store.end_session(worker.id, SessionStatus.failed, 9, max_attempts=3, tell=tell)

    assert ending is not None and not ending.session.live
    messages, _ = await store.take_unread(boss.id, 10, taken_at=now())
    assert [(m.subject, m.body) for m in messages] == [("ended", "released a")]


async def test_an_ended_session_cannot_claim_or_be_given_a_task(store: Store, make_session: Maker) -> None:
    """Its process may still be running (ended by a sweep, or by a coordinator that gave up on it): a
    task it took now would stay in_progress under it for good, since its end has released its work."""
    gone = await make_session("gone")
    a = task("a")
    await store.create_tasks([a])
    await store.end_session(gone.id, SessionStatus.exited, None, max_attempts=3)

    with pytest.raises(Conflict) as claim:
        await store.claim_task(gone.id, 1)
    with pytest.raises(Conflict) as give:
        await store.update_task(a.id, expect=TaskStatus.ready, assignee_id=gone.id)

    assert "gone has exited: an ended session takes no tasks" in str(claim.value)
    assert "respawn" in (claim.value.hint or "") and "ended session" in str(give.value)
    stored = await store.get_task(a.id)
    assert stored is not None and (stored.status, stored.assignee_id) == (TaskStatus.ready, None)


async def test_a_task_is_given_only_while_unassigned_or_held_by_whom_the_giver_saw(
    store: Store, make_session: Maker
) -> None:
    boss, w1, w2 = await make_session("boss"), await make_session("w1"), await make_session("w2")
    a = task("a")
    await store.create_tasks([a])
    await store.update_task(a.id, expect=TaskStatus.ready, assignee_id=w1.id)  # one spawn wins

    with pytest.raises(Conflict) as second:  # the other saw it unassigned
        await store.update_task(a.id, expect=TaskStatus.ready, assignee_id=w2.id)
    stolen = await store.update_task(a.id, expect=TaskStatus.ready, assignee_id=w2.id, expect_assignee=w1.id)

    assert "Task" in str(second.value) and "is reserved for w1 now" in str(second.value)
    assert stolen.task.assignee_id == w2.id
    again = await store.update_task(a.id, expect=TaskStatus.ready, assignee_id=boss.id, expect_assignee=w2.id)
    assert again.task.assignee_id == boss.id


async def test_reports_are_kept_newest_first_and_set_the_session_status(store: Store, make_session: Maker) -> None:
    worker = await make_session("worker")
    a = task("a")
    await store.create_tasks([a])
    for i, kind in enumerate([ReportKind.progress, ReportKind.blocked]):
        await store.add_report(
            ReportRecord(
                id=new_id("r"),
                session_id=worker.id,
                task_id=a.id if i else None,
                kind=kind,
                summary=f"report {i}",
                artifacts=["log.txt"] if i else [],
                percent=50.0 if i else None,
                created_at=now(),
            ),
            SessionStatus.blocked if kind is ReportKind.blocked else None,
        )

    everything = await store.reports(session_id=worker.id)
    assert [r.summary for r in everything] == ["report 1", "report 0"]
    assert everything[0].artifacts == ["log.txt"] and everything[0].percent == 50.0
    assert [r.summary for r in await store.reports(task_id=a.id)] == ["report 1"]
    assert [r.summary for r in await store.reports(limit=1)] == ["report 1"]
    session = await store.get_session(worker.id)
    assert session is not None and session.status is SessionStatus.blocked
