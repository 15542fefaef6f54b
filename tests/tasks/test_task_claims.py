"""task_ready: readiness, ordering, atomic and exclusive claims, file ownership, assignee restriction."""

from __future__ import annotations

from typing import Any

import pytest

from maestro_mcp.errors import Conflict
from maestro_mcp.models import SessionStatus, TaskStatus

pytestmark = pytest.mark.anyio


async def test_a_task_is_ready_only_once_every_dependency_is_done(crew: Any, boss: Any) -> None:
    w1 = await crew.member("w1")
    ids = await boss.create(
        {"key": "a", "title": "A"}, {"key": "b", "title": "B"}, {"key": "c", "title": "C", "depends_on": ["a", "b"]}
    )
    ready = (await w1.call("task_ready"))["tasks"]
    assert {t["key"] for t in ready} == {"a", "b"}

    first = await w1.claim()
    assert first is not None
    await w1.call("task_update", task_id=first["id"], status="done", result="ok")
    assert (await boss.tasks())["c"]["status"] == "pending"
    assert {t["key"] for t in (await w1.call("task_ready"))["tasks"]} == {"a", "b"} - {first["key"]}

    second = await w1.claim()
    assert second is not None
    updated = await w1.call("task_update", task_id=second["id"], status="done", result="ok")
    assert updated["now_ready"] == [ids["c"]]
    assert (await boss.tasks())["c"]["status"] == "ready"
    assert [t["key"] for t in (await w1.call("task_ready"))["tasks"]] == ["c"]


async def test_ready_tasks_come_by_priority_then_age(crew: Any, boss: Any) -> None:
    w1 = await crew.member("w1")
    await boss.create(
        {"key": "old-low", "title": "Old low", "priority": -1},
        {"key": "old", "title": "Old"},
        {"key": "urgent", "title": "Urgent", "priority": 5},
    )
    await boss.create({"key": "new", "title": "New"}, {"key": "new-urgent", "title": "New urgent", "priority": 5})
    order = ["urgent", "new-urgent", "old", "new", "old-low"]
    assert [t["key"] for t in (await w1.call("task_ready"))["tasks"]] == order
    assert [t["key"] for t in (await w1.call("task_ready", limit=2))["tasks"]] == order[:2]
    w2 = await crew.member("w2")
    first = await w2.call("task_ready", claim=True)
    assert first["claimed"]["key"] == order[0]
    assert [t["key"] for t in first["tasks"]] == order[1:]
    await w2.call("task_update", task_id=first["claimed"]["id"], status="ready")  # give it back
    claimed = []
    while (task := await w1.claim()) is not None:
        claimed.append(task["key"])
    assert claimed == order


async def test_claim_assigns_the_first_ready_task_to_the_caller_in_progress(crew: Any, boss: Any) -> None:
    w1 = await crew.member("w1")
    ids = await boss.create({"key": "a", "title": "A"}, {"key": "b", "title": "B"})
    result = await w1.call("task_ready", claim=True)
    claimed = result["claimed"]
    assert claimed["id"] == ids["a"]
    assert claimed["status"] == "in_progress" and claimed["assignee"] == "w1" and claimed["attempts"] == 1
    assert [t["id"] for t in result["tasks"]] == [ids["b"]]
    stored = {t.id: t for t in await crew.stored()}
    assert stored[ids["a"]].status.value == "in_progress" and stored[ids["a"]].assignee_id == w1.id
    assert stored[ids["b"]].status.value == "ready" and stored[ids["b"]].assignee_id is None


async def test_claim_with_nothing_ready_returns_null(crew: Any, boss: Any) -> None:
    w1 = await crew.member("w1")
    assert await w1.call("task_ready", claim=True) == {
        "unread": {"count": 0, "urgent": False},
        "tasks": [],
        "claimed": None,
        "skipped": [],
    }
    await boss.create({"key": "a", "title": "A"}, {"key": "b", "title": "B", "depends_on": ["a"]})
    assert (await w1.claim())["key"] == "a"
    assert await w1.claim() is None


async def test_a_worker_being_stopped_claims_nothing_and_the_task_stays_for_the_others(crew: Any, boss: Any) -> None:
    """Between the stop mail and the kill it may still look for work: a task it took would be torn from it
    and counted a failed attempt."""
    w1, w2 = await crew.member("w1"), await crew.member("w2")
    ids = await boss.create({"key": "a", "title": "A"})
    await crew.store.set_session_status(w1.id, SessionStatus.stopped)

    refused = await w1.call("task_ready", claim=True)

    assert refused["claimed"] is None and refused["tasks"] == []
    assert refused["skipped"] == ["You are being stopped (see your mail): you take no new tasks. Finish up and exit."]
    with pytest.raises(Conflict, match="being stopped"):  # nor is a task reserved for it (spawn, scheduler)
        await crew.store.update_task(ids["a"], expect=TaskStatus.ready, assignee_id=w1.id)
    claimed = await w2.claim()
    assert claimed is not None and claimed["id"] == ids["a"] and claimed["attempts"] == 1


async def test_the_workers_of_an_ended_coordinator_take_no_new_task_until_it_is_back(crew: Any, boss: Any) -> None:
    """It told them to end (or was killed, and a sweep told them): a task one took on its way out would be
    torn from it by its exit. Taken over again, it leads them again."""
    w1 = await crew.member("w1")
    ids = await boss.create({"key": "a", "title": "A"})
    await crew.store.end_session(boss.id, SessionStatus.exited, 0, max_attempts=3)

    looked = await w1.call("task_ready", claim=True)

    assert looked["claimed"] is None
    assert looked["skipped"] == [
        "Your coordinator boss has ended: you take no new tasks. Report what you have, then end."
    ]
    await crew.store.revive_session(boss.id, SessionStatus.working, None, ended_only=True)
    claimed = await w1.claim()
    assert claimed is not None and claimed["id"] == ids["a"]


async def test_claim_skips_tasks_whose_files_overlap_work_in_progress_and_says_so(crew: Any, boss: Any) -> None:
    w1, w2 = await crew.member("w1"), await crew.member("w2")
    ids = await boss.create(
        {"key": "db", "title": "Schema", "files": ["src/db/"]},
        {"key": "models", "title": "Models", "files": ["src/db/models.py"], "priority": -1},
        {"key": "all-py", "title": "Lint", "files": ["src/**/*.py"], "priority": -1},
        {"key": "docs", "title": "Docs", "files": ["docs/index.md"], "priority": -2},
    )
    assert (await w1.claim())["id"] == ids["db"]

    result = await w2.call("task_ready", claim=True)
    assert result["claimed"]["id"] == ids["docs"]
    skipped = "\n".join(result["skipped"])
    assert len(result["skipped"]) == 2
    for key in ("models", "all-py"):
        assert ids[key] in skipped
    assert ids["db"] in skipped and "in progress by w1" in skipped and "'src/db/models.py'" in skipped

    # Its own in-progress work does not stop the owner.
    assert (await w1.claim())["id"] == ids["models"]


async def test_overlapping_tasks_become_claimable_when_the_owner_finishes(crew: Any, boss: Any) -> None:
    w1, w2 = await crew.member("w1"), await crew.member("w2")
    ids = await boss.create(
        {"key": "a", "title": "A", "files": ["app.py"]}, {"key": "b", "title": "B", "files": ["app.py"]}
    )
    await w1.claim()
    assert await w2.claim() is None
    await w1.call("report_progress", kind="complete", summary="done A", task_id=ids["a"])
    assert (await w2.claim())["id"] == ids["b"]


async def test_an_assigned_task_is_only_offered_to_and_claimable_by_its_assignee(crew: Any, boss: Any) -> None:
    w1, w2 = await crew.member("w1"), await crew.member("w2")
    ids = await boss.create({"key": "mine", "title": "For w2", "assignee": "w2", "priority": 9})
    ids |= await boss.create({"key": "open", "title": "Anyone"})

    assert [t["key"] for t in (await w1.call("task_ready"))["tasks"]] == ["open"]
    assert (await w1.claim())["id"] == ids["open"]
    assert await w1.claim() is None
    claimed = await w2.claim()
    assert claimed is not None and claimed["id"] == ids["mine"] and claimed["assignee"] == "w2"


async def test_claiming_sets_the_claimers_status_to_working_again(crew: Any, boss: Any) -> None:
    w1 = await crew.member("w1")
    ids = await boss.create({"key": "a", "title": "A"}, {"key": "b", "title": "B"})
    await w1.claim()
    await w1.call("report_progress", kind="complete", summary="A is done", task_id=ids["a"])
    assert await crew.session_status("w1") == "done"
    assert (await w1.claim())["id"] == ids["b"]
    assert await crew.session_status("w1") == "working"


async def test_task_ready_validates_limit(crew: Any, boss: Any) -> None:
    w1 = await crew.member("w1")
    assert "limit=0 is out of range" in await w1.error("task_ready", limit=0)
    assert "limit=501" in await w1.error("task_ready", limit=501)


async def test_unknown_extra_arguments_are_ignored(crew: Any, boss: Any) -> None:
    w1 = await crew.member("w1")
    created = await boss.call(
        "task_create", tasks=[{"key": "a", "title": "A", "estimate": "2h"}], wait_for_previous=True
    )
    assert created["tasks"][0]["key"] == "a"
    claimed = (await w1.call("task_ready", claim=True, wait_for_previous=True))["claimed"]
    assert claimed["key"] == "a"
    listed = await w1.call("task_list", wait_for_previous=False)
    assert len(listed["tasks"]) == 1
