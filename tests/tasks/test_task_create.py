"""task_create and task_list: a whole DAG in one call, all or nothing, shown as waves."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

pytestmark = pytest.mark.anyio


async def test_a_batch_is_created_in_the_callers_order_with_keys_resolved_to_ids(boss: Any) -> None:
    result = await boss.call(
        "task_create",
        tasks=[
            {"key": "schema", "title": "Design the schema", "files": ["src/db.py"], "acceptance": ["runs", "fast"]},
            {"key": "api", "title": "Build the API", "depends_on": ["schema"], "description": "REST"},
            {"title": "Write the docs"},
        ],
    )
    created = result["tasks"]
    assert [t["key"] for t in created] == ["schema", "api", None]
    assert [t["status"] for t in created] == ["ready", "pending", "ready"]
    assert len({t["id"] for t in created}) == 3

    api = (await boss.call("task_get", task_id=created[1]["id"]))["task"]
    assert api["depends_on"] == [created[0]["id"]]
    assert api["description"] == "REST"
    schema = (await boss.call("task_get", task_id=created[0]["id"]))["task"]
    assert schema["acceptance"] == "- runs\n- fast"
    assert schema["files"] == ["src/db.py"]
    assert schema["assignee"] is None and schema["result"] is None and schema["artifacts"] == []


async def test_depends_on_accepts_ids_of_existing_tasks_and_waves_continue_from_them(boss: Any) -> None:
    first = await boss.create({"key": "a", "title": "A"}, {"key": "b", "title": "B", "depends_on": ["a"]})
    result = await boss.call("task_create", tasks=[{"key": "c", "title": "C", "depends_on": [first["b"]]}])
    (c,) = result["tasks"]
    assert c["wave"] == 2 and c["status"] == "pending"
    assert (await boss.call("task_get", task_id=c["id"]))["task"]["depends_on"] == [first["b"]]


async def test_keys_are_local_to_one_call(boss: Any) -> None:
    first = await boss.create({"key": "setup", "title": "Set up"})
    second = await boss.create({"key": "setup", "title": "Set up again"})
    assert first["setup"] != second["setup"]

    text = await boss.error("task_create", tasks=[{"key": "next", "title": "Next", "depends_on": ["setup"]}])
    assert "'setup'" in text and "next" in text
    assert "neither a key of this call nor an existing task id" in text


async def test_unknown_dependency_is_refused_naming_the_task_and_the_dependency(boss: Any) -> None:
    await boss.create({"key": "keep", "title": "Already here"})
    before = await boss.call("task_list")

    text = await boss.error(
        "task_create",
        tasks=[
            {"key": "ok", "title": "Fine"},
            {"key": "later", "title": "Later", "depends_on": ["ok", "t-doesnotexist"]},
        ],
    )
    assert "later" in text and "'t-doesnotexist'" in text
    assert await boss.call("task_list") == before


async def test_self_dependency_is_refused(boss: Any) -> None:
    text = await boss.error("task_create", tasks=[{"key": "loop", "title": "Loop", "depends_on": ["loop"]}])
    assert "loop depends on itself" in text
    assert (await boss.call("task_list"))["tasks"] == []


async def test_a_cycle_is_refused_with_its_path_and_nothing_is_stored(boss: Any) -> None:
    text = await boss.error(
        "task_create",
        tasks=[
            {"key": "root", "title": "Root"},
            {"key": "a", "title": "A", "depends_on": ["root", "c"]},
            {"key": "b", "title": "B", "depends_on": ["a"]},
            {"key": "c", "title": "C", "depends_on": ["b"]},
        ],
    )
    match = re.search(r"cycle: ([\w >-]+?)\.", text)
    assert match, text
    path = match.group(1).split(" -> ")
    assert path[0] == path[-1] and sorted(path[:-1]) == ["a", "b", "c"]
    # Every step of the path is a real edge "x depends on y".
    depends = {"a": {"root", "c"}, "b": {"a"}, "c": {"b"}}
    assert all(y in depends[x] for x, y in itertools.pairwise(path))
    assert (await boss.call("task_list"))["tasks"] == []


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"key": "x", "title": "   "}, "x has an empty title"),
        ({"key": "x", "title": "X", "files": ["/etc/passwd"]}, "absolute path"),
        ({"key": "x", "title": "X", "files": ["../elsewhere.py"]}, "outside the project"),
        ({"key": "x", "title": "X", "assignee": "nobody-here"}, "No session 'nobody-here'"),
        ({"key": "x", "title": "X", "parent_id": "t-missing"}, "No parent task 't-missing'"),
        ({"key": "bad key!", "title": "X"}, "not valid"),
        ({"key": "first", "title": "Twice"}, "'first' is used twice"),
        ({"key": "x"}, "title"),
    ],
)
async def test_a_failing_batch_stores_nothing(boss: Any, bad: dict[str, Any], says: str) -> None:
    existing = await boss.create({"key": "existing", "title": "Existing"})
    before = await boss.call("task_list")

    text = await boss.error(
        "task_create",
        tasks=[
            {"key": "first", "title": "First", "depends_on": [existing["existing"]]},
            {"key": "second", "title": "Second", "depends_on": ["first"]},
            bad,
        ],
    )
    assert says in text
    assert await boss.call("task_list") == before


async def test_an_empty_batch_is_refused(boss: Any) -> None:
    assert "`tasks` is empty" in await boss.error("task_create", tasks=[])


async def test_task_list_shows_waves_as_the_longest_dependency_chain(boss: Any) -> None:
    ids = await boss.create(
        {"key": "d", "title": "D", "depends_on": ["a"]},
        {"key": "c", "title": "C", "depends_on": ["a", "b"]},
        {"key": "b", "title": "B", "depends_on": ["a"]},
        {"key": "a", "title": "A"},
        {"key": "e", "title": "E", "depends_on": ["a", "c"]},
    )
    listed = (await boss.call("task_list"))["tasks"]
    assert {t["key"]: t["wave"] for t in listed} == {"a": 0, "b": 1, "d": 1, "c": 2, "e": 3}
    assert [t["wave"] for t in listed] == sorted(t["wave"] for t in listed)
    assert {t["key"]: t["status"] for t in listed}["a"] == "ready"
    assert all(t["status"] == "pending" for t in listed if t["key"] != "a")
    assert set(ids) == {"a", "b", "c", "d", "e"}


async def test_task_list_filters_by_status_assignee_and_parent(crew: Any, boss: Any) -> None:
    w1 = await crew.member("w1")
    ids = await boss.create(
        {"key": "epic", "title": "Epic"},
        {"key": "part", "title": "Part", "parent_id": "epic", "assignee": "w1"},
        {"key": "other", "title": "Other", "depends_on": ["epic"]},
    )
    assert set(await boss.tasks(status="pending")) == {"other"}
    assert set(await boss.tasks(assignee="w1")) == {"part"}
    assert set(await boss.tasks(assignee=w1.id)) == {"part"}
    assert set(await boss.tasks(parent_id=ids["epic"])) == {"part"}
    assert "No session 'ghost'" in await boss.error("task_list", assignee="ghost")


async def test_a_dependency_on_a_finished_task_is_ready_and_on_a_failed_one_blocked(crew: Any, boss: Any) -> None:
    w1 = await crew.member("w1")
    ids = await boss.create({"key": "good", "title": "Good"}, {"key": "bad", "title": "Bad"})
    await w1.claim()
    await w1.call("task_update", task_id=ids["good"], status="done", result="ok")
    await w1.claim()
    await w1.call("task_update", task_id=ids["bad"], status="failed", result="broke")

    later = await boss.create(
        {"key": "after-good", "title": "After good", "depends_on": [ids["good"]]},
        {"key": "after-bad", "title": "After bad", "depends_on": [ids["bad"]]},
    )
    tasks = await boss.tasks()
    assert tasks["after-good"]["status"] == "ready"
    assert tasks["after-bad"]["status"] == "blocked"
    assert ids["bad"] in tasks["after-bad"]["blocked_reason"]
    assert set(later) == {"after-good", "after-bad"}
