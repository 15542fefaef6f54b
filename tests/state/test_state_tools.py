"""state_set / state_get as agents call them: versions, compare-and-set, bad input, waiting, task results."""

from __future__ import annotations

import json

import anyio
import pytest
from harness import Team

from maestro_mcp.models import TaskStatus

pytestmark = pytest.mark.anyio


async def test_a_value_set_by_one_agent_is_read_by_another_with_its_version_and_setter(team: Team) -> None:
    boss = await team.boss()
    w1 = await team.member("w1")

    first = await w1.call("state_set", key="api.contract", value=json.dumps({"port": 8080}))
    second = await w1.call("state_set", key="api.contract", value=json.dumps({"port": 8081}))
    got = await boss.call("state_get", key="api.contract")

    assert (first["key"], first["version"], second["version"]) == ("api.contract", 1, 2)
    assert json.loads(got["value"]) == {"port": 8081}
    assert got["version"] == 2 and got["set_by"] == "w1" and got["set_at"].endswith("Z") and got["changed"]


async def test_a_compare_and_set_conflict_names_the_current_version(team: Team) -> None:
    boss = await team.boss()
    await boss.call("state_set", key="lock.db", value='"boss"', if_version=0)

    taken = await boss.error("state_set", key="lock.db", value='"w1"', if_version=0)
    stale = await boss.error("state_set", key="lock.db", value='"w1"', if_version=4)
    unset = await boss.error("state_set", key="nothing.here", value="1", if_version=2)

    assert "is at version 1" in taken and "set by boss" in taken and "if_version=1" in taken
    assert "is at version 1" in stale and "not 4" in stale
    assert "unset (current version 0)" in unset and "if_version=0" in unset
    assert (await boss.call("state_get", key="lock.db"))["value"] == '"boss"'


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"key": "build/status", "value": "1"}, "not valid"),
        ({"key": "a..b", "value": "1"}, "not valid"),
        ({"key": "k" * 201, "value": "1"}, "201 characters"),
        ({"key": "", "value": "1"}, "empty"),
        ({"key": "k", "value": "not json"}, "not JSON"),
        ({"key": "k", "value": json.dumps("x" * 70_000)}, "the limit is 65536"),
        ({"key": "k", "value": "1", "ttl_s": 0}, "ttl_s=0"),
        ({"key": "k", "value": "1", "if_version": -1}, "negative"),
    ],
)
async def test_bad_state_input_is_refused_with_what_was_wrong_and_nothing_is_stored(
    team: Team, arguments: dict[str, object], named: str
) -> None:
    boss = await team.boss()
    error = await boss.error("state_set", **arguments)
    assert named in error
    assert await team.store.list_state() == []


async def test_reading_an_unset_key_is_a_clear_not_found(team: Team) -> None:
    boss = await team.boss()
    error = await boss.error("state_get", key="api.port")
    waited = await boss.error("state_get", key="api.port", wait_s=0)
    assert "'api.port' is not set" in error and "wait_s" in error
    assert "is not set after waiting" not in waited  # wait_s=0 looks once


async def test_a_waiting_reader_wakes_when_the_key_is_set_and_again_when_it_changes(team: Team) -> None:
    boss = await team.boss()
    w1 = await team.member("w1")
    seen: list[dict[str, object]] = []
    waiting, first = anyio.Event(), anyio.Event()

    async def reader() -> None:
        waiting.set()
        seen.append(await boss.call("state_get", key="schema.version", wait_s=30))
        first.set()
        seen.append(await boss.call("state_get", key="schema.version", wait_s=30, after_version=1))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await waiting.wait()
            await w1.call("state_set", key="schema.version", value="1")
            await first.wait()  # the reader has its first answer before the second value exists
            await w1.call("state_set", key="schema.version", value="2")

    assert [(s["value"], s["version"], s["changed"]) for s in seen] == [("1", 1, True), ("2", 2, True)]


async def test_a_wait_that_sees_no_newer_version_returns_the_current_one_unchanged(team: Team) -> None:
    boss = await team.boss()
    await boss.call("state_set", key="k", value="1")
    got = await boss.call("state_get", key="k", wait_s=0.05, after_version=1)
    assert got["version"] == 1 and got["changed"] is False


async def test_a_done_tasks_result_is_published_under_its_key(team: Team) -> None:
    boss = await team.boss()
    w1 = await team.member("w1")
    ids = await boss.create({"key": "api", "title": "Define the API"})
    claimed = await w1.claim()
    assert claimed is not None and claimed["id"] == ids["api"]

    await w1.call("report_progress", kind="complete", summary="OpenAPI at docs/api.yaml, port 8080")

    got = await boss.call("state_get", key="task.api.result")
    assert json.loads(got["value"]) == "OpenAPI at docs/api.yaml, port 8080" and got["set_by"] == "w1"


async def test_a_claimed_tasks_state_placeholders_are_filled_in_before_the_worker_sees_them(team: Team) -> None:
    boss = await team.boss()
    w1 = await team.member("w1")
    await boss.call("state_set", key="api.port", value="8080")
    await boss.call("state_set", key="api.contract", value=json.dumps({"port": 8080}))
    ids = await boss.create(
        {
            "key": "client",
            "title": "Client for port {{ state.api.port }}",
            "description": "Contract: {{state.api.contract}}; missing: {{ state.nobody.set.this }}"
            " {{ state.no..such.key }}",
        }
    )

    claimed = await w1.claim()

    assert claimed is not None
    assert claimed["title"] == "Client for port 8080"
    assert claimed["description"] == 'Contract: {"port": 8080}; missing: (unset) (unset)'
    # Stored too: the coordinator and a restarted worker read what the worker was given.
    stored = await boss.call("task_get", task_id=ids["client"])
    assert stored["task"]["description"] == claimed["description"]


async def test_a_task_claimed_the_moment_its_dependency_is_done_reads_that_result(team: Team) -> None:
    """The result is published as state just after the done: a claim in between reads it from the task,
    from a dependency however far back, and not an earlier run's value left in state under that key."""
    boss = await team.boss()
    w1 = await team.member("w1")
    await boss.call("state_set", key="task.schema.result", value=json.dumps("an earlier run's schema"))
    ids = await boss.create(
        {"key": "schema", "title": "Schema"},
        {"key": "api", "title": "API", "depends_on": ["schema"]},
        {
            "key": "ui",
            "title": "UI",
            "depends_on": ["api"],
            "description": "{{ state.task.schema.result }} / {{ state.task.api.result }}",
        },
    )
    for key in ("schema", "api"):
        claimed = await w1.claim()
        assert claimed is not None and claimed["key"] == key
        # Done in the store alone: nothing is published to shared state yet.
        await team.store.update_task(
            ids[key], expect=TaskStatus.in_progress, status=TaskStatus.done, result=f"{key} ok"
        )
    assert "is not set" in await boss.error("state_get", key="task.api.result")

    claimed = await w1.claim()

    assert claimed is not None and claimed["key"] == "ui"
    assert claimed["description"] == "schema ok / api ok"
