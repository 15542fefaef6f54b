"""report_progress: the session's timeline and status, the task it names, and mail to the coordinator."""

from __future__ import annotations

from typing import Any

import pytest

from maestro_mcp.models import SessionStatus

pytestmark = pytest.mark.anyio


async def _working(crew: Any, boss: Any, *more: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    w1 = await crew.member("w1")
    ids = await boss.create({"key": "a", "title": "Build A", "priority": 1}, *more)
    assert (await w1.claim())["id"] == ids["a"]
    return w1, ids


async def test_complete_marks_the_task_done_and_mails_the_parent_an_event(crew: Any, boss: Any) -> None:
    w1, ids = await _working(crew, boss)
    result = await w1.call(
        "report_progress", kind="complete", summary="A is built", task_id=ids["a"], artifacts=["src/a.py"]
    )
    assert result["notified"] == "boss"
    assert result["task"]["status"] == "done"
    assert result["task"]["result"] == "A is built" and result["task"]["artifacts"] == ["src/a.py"]
    assert await crew.session_status("w1") == "done"

    (mail,) = await boss.inbox()
    assert mail["type"] == "event" and mail["sender"] == "w1" and mail["task_id"] == ids["a"]
    assert ids["a"] in mail["subject"] and "complete" in mail["subject"]
    assert "A is built" in mail["body"] and "src/a.py" in mail["body"]
    (report,) = await crew.store.reports(session_id=w1.id)
    assert report.kind.value == "complete" and report.task_id == ids["a"]


@pytest.mark.parametrize(
    ("kind", "task_status", "session_status"),
    [("blocked", "blocked", "blocked"), ("needs_input", "in_progress", "needs_input"), ("failed", "failed", "failed")],
)
async def test_reports_that_need_the_coordinator_mail_it_with_high_priority(
    crew: Any, boss: Any, kind: str, task_status: str, session_status: str
) -> None:
    w1, ids = await _working(crew, boss)
    result = await w1.call("report_progress", kind=kind, summary="which database?", task_id=ids["a"])
    assert result["notified"] == "boss"
    assert result["task"]["status"] == task_status
    assert await crew.session_status("w1") == session_status

    unread = (await boss.call("whoami"))["unread"]
    assert unread == {"count": 1, "urgent": True}
    (mail,) = await boss.inbox()
    assert mail["type"] == "event" and mail["priority"] == "high" and mail["task_id"] == ids["a"]
    assert kind in mail["subject"] and "which database?" in mail["body"]


async def test_a_blocked_report_records_the_reason_on_the_task(crew: Any, boss: Any) -> None:
    w1, ids = await _working(crew, boss)
    await w1.call("report_progress", kind="blocked", summary="need credentials", task_id=ids["a"])
    assert (await boss.tasks())["a"]["blocked_reason"] == "need credentials"


async def test_progress_updates_the_timeline_and_status_without_mail(crew: Any, boss: Any) -> None:
    w1, ids = await _working(crew, boss)
    await crew.store.set_session_status(w1.id, SessionStatus.idle)
    result = await w1.call("report_progress", kind="progress", summary="halfway", task_id=ids["a"], percent=50)
    assert result["notified"] is None and result["task"]["status"] == "in_progress"
    assert await crew.session_status("w1") == "working"
    assert await boss.inbox() == []
    (report,) = await crew.store.reports(session_id=w1.id)
    assert report.percent == 50 and report.summary == "halfway"


async def test_a_report_without_a_task_still_reaches_the_parent(crew: Any, boss: Any) -> None:
    w1 = await crew.member("w1")
    result = await w1.call("report_progress", kind="needs_input", summary="what next?")
    assert result["task"] is None and result["notified"] == "boss"
    (mail,) = await boss.inbox()
    assert mail["task_id"] is None and "what next?" in mail["body"]


async def test_tasks_made_ready_by_a_completion_reach_the_coordinator_in_one_event_mail(crew: Any, boss: Any) -> None:
    w1, ids = await _working(
        crew,
        boss,
        {"key": "b", "title": "Build B", "depends_on": ["a"]},
        {"key": "c", "title": "Build C", "depends_on": ["a"]},
        {"key": "d", "title": "Build D", "depends_on": ["a", "b"]},
    )
    await w1.call("report_progress", kind="complete", summary="A is built", task_id=ids["a"])
    mails = await boss.inbox()
    ready_mails = [m for m in mails if "ready" in m["subject"]]
    assert len(ready_mails) == 1
    (ready,) = ready_mails
    assert ready["type"] == "event" and ready["subject"] == "2 task(s) ready"
    assert ids["b"] in ready["body"] and ids["c"] in ready["body"] and ids["d"] not in ready["body"]
    assert len(mails) == 2  # the completion itself, and the one listing what became ready


async def test_a_failure_tells_the_coordinator_which_dependents_it_blocked(crew: Any, boss: Any) -> None:
    w1, ids = await _working(crew, boss, {"key": "b", "title": "Build B", "depends_on": ["a"]})
    await w1.call("report_progress", kind="failed", summary="cannot build A", task_id=ids["a"])
    blocked = [m for m in await boss.inbox() if "blocked" in m["subject"]]
    assert len(blocked) == 1 and ids["b"] in blocked[0]["body"] and blocked[0]["priority"] == "high"


async def test_reporting_on_someone_elses_task_is_refused_and_changes_nothing(crew: Any, boss: Any) -> None:
    _w1, ids = await _working(crew, boss)
    w2 = await crew.member("w2")
    before = await boss.call("task_list")
    text = await w2.error("report_progress", kind="complete", summary="I did it", task_id=ids["a"])
    assert "is not yours" in text
    assert await boss.call("task_list") == before
    assert await boss.inbox() == []
    assert await crew.store.reports() == []
    assert await crew.session_status("w2") == "working"


async def test_complete_of_a_task_that_was_never_claimed_is_refused(crew: Any, boss: Any) -> None:
    w1 = await crew.member("w1")
    ids = await boss.create({"key": "a", "title": "A", "assignee": "w1"})
    text = await w1.error("report_progress", kind="complete", summary="done", task_id=ids["a"])
    assert "cannot go from ready to done" in text
    assert (await boss.tasks())["a"]["status"] == "ready"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ({"kind": "progress", "summary": "  "}, "summary is empty"),
        ({"kind": "progress", "summary": "x", "percent": 120}, "percent=120"),
        ({"kind": "finished", "summary": "x"}, "kind"),
    ],
)
async def test_bad_reports_are_refused(crew: Any, boss: Any, args: dict[str, Any], says: str) -> None:
    w1 = await crew.member("w1")
    assert says in await w1.error("report_progress", **args)
    assert await crew.store.reports() == []


async def test_whoami_lists_the_callers_unfinished_tasks(crew: Any, boss: Any) -> None:
    w1, ids = await _working(
        crew,
        boss,
        {"key": "reserved", "title": "Reserved for w1", "assignee": "w1"},
        {"key": "other", "title": "Someone else's"},
    )
    mine = {t["id"]: t["status"] for t in (await w1.call("whoami"))["tasks"]}
    assert mine == {ids["a"]: "in_progress", ids["reserved"]: "ready"}

    await w1.call("report_progress", kind="complete", summary="A done", task_id=ids["a"])
    assert (await w1.claim())["id"] == ids["reserved"]
    mine = {t["id"]: t["status"] for t in (await w1.call("whoami"))["tasks"]}
    assert mine == {ids["reserved"]: "in_progress"}


async def test_a_worker_unblocked_by_its_coordinator_can_complete_its_task(crew: Any, boss: Any) -> None:
    w1, ids = await _working(crew, boss, {"key": "b", "title": "Build B", "depends_on": ["a"]})
    await w1.call("report_progress", kind="blocked", summary="which database?", task_id=ids["a"])
    await boss.call("mail_send", to="w1", body="Use SQLite.")
    resumed = await w1.call("report_progress", kind="progress", summary="using SQLite", task_id=ids["a"])
    assert resumed["task"]["status"] == "in_progress" and resumed["task"]["blocked_reason"] is None
    await w1.call("report_progress", kind="blocked", summary="and the schema?", task_id=ids["a"])
    done = await w1.call("report_progress", kind="complete", summary="A is built on SQLite", task_id=ids["a"])
    assert done["task"]["status"] == "done"
    assert (await boss.tasks())["b"]["status"] == "ready"


async def test_a_task_blocked_on_its_dependencies_cannot_be_resumed_by_a_report(crew: Any, boss: Any) -> None:
    w1, ids = await _working(crew, boss, {"key": "b", "title": "Build B", "depends_on": ["a"]})
    await w1.call("report_progress", kind="failed", summary="cannot", task_id=ids["a"])
    await boss.call("task_update", task_id=ids["a"], status="ready")
    assert (await w1.claim())["id"] == ids["a"]
    await w1.call("task_update", task_id=ids["a"], status="failed", result="still cannot")
    text = await w1.error("report_progress", kind="complete", summary="B done", task_id=ids["b"])
    assert "is not yours" in text
    text = await boss.error("task_update", task_id=ids["b"], status="in_progress")
    assert "task_ready" in text
    assert (await boss.tasks())["b"]["status"] == "blocked"


async def test_complete_without_a_task_id_finishes_the_callers_only_task_in_progress(crew: Any, boss: Any) -> None:
    w1, ids = await _working(crew, boss)
    result = await w1.call("report_progress", kind="complete", summary="A is built")
    assert result["task"]["id"] == ids["a"] and result["task"]["status"] == "done"


async def test_complete_without_a_task_id_and_several_in_progress_names_them_and_changes_nothing(
    crew: Any, boss: Any
) -> None:
    w1, ids = await _working(crew, boss, {"key": "b", "title": "Build B"})
    assert (await w1.claim())["id"] == ids["b"]
    text = await w1.error("report_progress", kind="complete", summary="done?")
    assert ids["a"] in text and ids["b"] in text and "task_id" in text
    assert {t["status"] for t in (await w1.call("task_list"))["tasks"]} == {"in_progress"}
    assert await crew.store.reports(session_id=w1.id) == []


async def test_complete_with_nothing_in_progress_is_a_report_about_the_session(crew: Any, boss: Any) -> None:
    w1 = await crew.member("w1")
    result = await w1.call("report_progress", kind="complete", summary="nothing left to do")
    assert result["task"] is None
    assert await crew.session_status("w1") == "done"
