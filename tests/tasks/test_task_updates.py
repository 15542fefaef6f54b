"""task_update: enforced transitions, ownership, results; failures block dependents until a retry."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio


async def _claimed(crew: Any, boss: Any, *more: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """A worker w1 holding task `a` in progress, plus whatever else the test wants created."""
    w1 = await crew.member("w1")
    ids = await boss.create({"key": "a", "title": "A", "priority": 1}, *more)
    claimed = await w1.claim()
    assert claimed is not None and claimed["id"] == ids["a"]
    return w1, ids


async def test_done_requires_a_result(crew: Any, boss: Any) -> None:
    w1, ids = await _claimed(crew, boss)
    text = await w1.error("task_update", task_id=ids["a"], status="done")
    assert "only be done with a result" in text and "`result`" in text
    assert "only be done with a result" in await w1.error("task_update", task_id=ids["a"], status="done", result="  ")
    done = await w1.call("task_update", task_id=ids["a"], status="done", result="built it", artifacts=["src/a.py"])
    assert done["task"]["status"] == "done"
    assert done["task"]["result"] == "built it" and done["task"]["artifacts"] == ["src/a.py"]


@pytest.mark.parametrize(
    ("setup", "target", "options"),
    [
        ("ready", "done", "blocked, cancelled"),
        ("ready", "in_progress", "blocked, cancelled"),
        ("pending", "ready", "blocked, cancelled"),
        ("done", "ready", "none: it is final"),
        ("cancelled", "ready", "none: it is final"),
        ("failed", "done", "cancelled, ready"),
    ],
)
async def test_illegal_transitions_are_refused_with_the_allowed_options(
    crew: Any, boss: Any, setup: str, target: str, options: str
) -> None:
    w1, ids = await _claimed(crew, boss, {"key": "b", "title": "B"}, {"key": "c", "title": "C", "depends_on": ["b"]})
    task = {"ready": ids["b"], "pending": ids["c"]}.get(setup, ids["a"])
    if setup in ("done", "failed"):
        await w1.call("task_update", task_id=ids["a"], status=setup, result="r")
    if setup == "cancelled":
        await boss.call("task_update", task_id=ids["a"], status="cancelled")
    before = await boss.call("task_list")

    text = await boss.error("task_update", task_id=task, status=target, result="r")
    assert f"cannot go from {setup} to {target}" in text
    assert f"it can go to: {options}." in text
    assert await boss.call("task_list") == before


async def test_only_the_assignee_or_a_coordinator_may_update_a_task(crew: Any, boss: Any) -> None:
    _w1, ids = await _claimed(crew, boss, {"key": "free", "title": "Free"})
    w2 = await crew.member("w2")
    before = await boss.call("task_list")

    text = await w2.error("task_update", task_id=ids["a"], status="done", result="stolen")
    assert "is not yours" in text and "task_ready(claim=true)" in text
    assert "is not yours" in await w2.error("task_update", task_id=ids["free"], status="blocked")
    assert "is not yours" in await w2.error("task_update", task_id=ids["a"], result="just a result")
    assert await boss.call("task_list") == before

    updated = await boss.call("task_update", task_id=ids["a"], status="blocked", result="waiting on a decision")
    assert updated["task"]["status"] == "blocked" and updated["task"]["blocked_reason"] == "waiting on a decision"


async def test_only_a_coordinator_may_cancel(crew: Any, boss: Any) -> None:
    w1, ids = await _claimed(crew, boss)
    text = await w1.error("task_update", task_id=ids["a"], status="cancelled")
    assert "Only a coordinator may set a task to cancelled" in text
    assert (await boss.tasks())["a"]["status"] == "in_progress"
    assert (await boss.call("task_update", task_id=ids["a"], status="cancelled"))["task"]["status"] == "cancelled"


async def test_a_coordinator_may_cancel_from_any_unfinished_status(crew: Any, boss: Any) -> None:
    ids = await boss.create({"key": "ready", "title": "R"}, {"key": "pending", "title": "P", "depends_on": ["ready"]})
    for key in ("pending", "ready"):
        assert (await boss.call("task_update", task_id=ids[key], status="cancelled"))["task"]["status"] == "cancelled"


async def test_giving_a_task_back_makes_it_claimable_by_anyone(crew: Any, boss: Any) -> None:
    w1, ids = await _claimed(crew, boss)
    w2 = await crew.member("w2")
    back = await w1.call("task_update", task_id=ids["a"], status="ready", note="no time for it")
    assert back["task"]["status"] == "ready" and back["task"]["assignee"] is None
    claimed = await w2.claim()
    assert claimed is not None and claimed["id"] == ids["a"] and claimed["attempts"] == 2


async def test_a_failed_dependency_blocks_dependents_with_a_reason_until_retried(crew: Any, boss: Any) -> None:
    w1, ids = await _claimed(
        crew,
        boss,
        {"key": "b", "title": "B", "depends_on": ["a"]},
        {"key": "c", "title": "C", "depends_on": ["b"]},
        {"key": "d", "title": "D", "depends_on": ["a"]},
    )
    failed = await w1.call("task_update", task_id=ids["a"], status="failed", result="tests do not pass")
    assert sorted(failed["now_blocked"]) == sorted([ids["b"], ids["d"]])
    tasks = await boss.tasks()
    for key in ("b", "d"):
        assert tasks[key]["status"] == "blocked"
        assert ids["a"] in tasks[key]["blocked_reason"] and "is failed" in tasks[key]["blocked_reason"]
        assert "retry" in tasks[key]["blocked_reason"]
    assert tasks["c"]["status"] == "pending"  # it waits on b, which has not failed
    assert await w1.claim() is None

    retried = await boss.call("task_update", task_id=ids["a"], status="ready")
    assert retried["task"]["status"] == "ready"
    tasks = await boss.tasks()
    assert [tasks[k]["status"] for k in ("b", "c", "d")] == ["pending", "pending", "pending"]
    assert tasks["b"]["blocked_reason"] is None

    again = await w1.claim()
    assert again is not None and again["id"] == ids["a"] and again["attempts"] == 2
    done = await w1.call("task_update", task_id=ids["a"], status="done", result="fixed")
    assert sorted(done["now_ready"]) == sorted([ids["b"], ids["d"]])


async def test_a_retried_task_can_be_claimed_by_another_worker(crew: Any, boss: Any) -> None:
    w1, ids = await _claimed(crew, boss)
    w2 = await crew.member("w2")
    await w1.call("report_progress", kind="failed", summary="I cannot do this", task_id=ids["a"])
    await boss.call("task_update", task_id=ids["a"], status="ready")
    claimed = await w2.claim()
    assert claimed is not None and claimed["id"] == ids["a"] and claimed["assignee"] == "w2"


async def test_a_cancelled_dependency_blocks_dependents(crew: Any, boss: Any) -> None:
    ids = await boss.create({"key": "a", "title": "A"}, {"key": "b", "title": "B", "depends_on": ["a"]})
    cancelled = await boss.call("task_update", task_id=ids["a"], status="cancelled", result="not needed")
    assert cancelled["now_blocked"] == [ids["b"]]
    b = (await boss.tasks())["b"]
    assert b["status"] == "blocked" and "is cancelled" in b["blocked_reason"]
    # The coordinator resolves it by cancelling the dependent too.
    assert (await boss.call("task_update", task_id=ids["b"], status="cancelled"))["task"]["status"] == "cancelled"


async def test_a_blocked_task_goes_back_to_ready_and_its_worker_takes_it_up_again(crew: Any, boss: Any) -> None:
    w1, ids = await _claimed(crew, boss)
    blocked = await w1.call("task_update", task_id=ids["a"], status="blocked", result="need the API key")
    assert blocked["task"]["blocked_reason"] == "need the API key"
    unblocked = await boss.call("task_update", task_id=ids["a"], status="ready")
    assert unblocked["task"]["status"] == "ready"
    again = await w1.claim()
    assert again is not None and again["id"] == ids["a"]


async def test_unknown_task_ids_are_clear_errors(crew: Any, boss: Any) -> None:
    w1 = await crew.member("w1")
    for tool, args in (
        ("task_get", {}),
        ("task_update", {"status": "done", "result": "x"}),
        ("report_progress", {"kind": "complete", "summary": "done"}),
    ):
        text = await w1.error(tool, task_id="t-nope", **args)
        assert "No task 't-nope'" in text and "task_list" in text
    assert await crew.store.reports() == []


async def test_a_note_is_recorded_on_the_tasks_timeline(crew: Any, boss: Any) -> None:
    w1, ids = await _claimed(crew, boss)
    await w1.call("task_update", task_id=ids["a"], note="halfway there")
    (report,) = await crew.store.reports(task_id=ids["a"])
    assert report.summary == "halfway there" and report.session_id == w1.id
    assert (await boss.tasks())["a"]["status"] == "in_progress"
