"""Bounds on everything an agent can store: refused with the field and the limit named, nothing stored.

One worker's oversized task once made every agent's task_list return 51 MB; a NUL character stored on
SQLite could never be moved to PostgreSQL. Also here: the task-graph inputs that failed inside the store
(a parent named by a later key, a task its own parent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from maestro_mcp.models import Role

if TYPE_CHECKING:
    from harness import Agent, Team

pytestmark = pytest.mark.anyio

BIG = "x" * (64 * 1024 + 1)


async def refused(team: Team, agent: Agent, tool: str, **arguments: Any) -> str:
    before = team.view.snapshot()
    tasks_before = team.view.count("tasks")
    text = await agent.error(tool, **arguments)
    assert team.view.snapshot() == before and team.view.count("tasks") == tasks_before, "nothing was stored"
    assert "\n" not in text and len(text) < 400, text
    return text


@pytest.mark.parametrize(
    ("task", "field"),
    [
        ({"title": "t", "description": BIG}, "tasks[0].description"),
        ({"title": "t", "acceptance": "y" * (10 * 1024 * 1024)}, "tasks[0].acceptance"),
        ({"title": "t", "acceptance": ["y" * 40_000, "z" * 40_000]}, "tasks[0].acceptance"),
        ({"title": "t", "files": [f"f{i}.py" for i in range(100_000)]}, "tasks[0].files"),
        ({"title": "t", "files": ["a/" * 600 + "x.py"]}, "tasks[0].files[0]"),
        ({"title": "x" * 301}, "tasks[0].title"),
        ({"title": "nul\x00here"}, "tasks[0].title"),
        ({"title": "t", "description": "a\x00b"}, "tasks[0].description"),
        ({"title": "t", "priority": 10**12}, "tasks[0].priority"),
    ],
)
async def test_an_oversized_or_nul_task_is_refused_naming_the_field(
    team: Team, task: dict[str, Any], field: str
) -> None:
    lead = await team.agent("lead")
    text = await refused(team, lead, "task_create", tasks=[task])
    assert field in text, text


async def test_results_artifacts_mail_and_reports_have_limits_too(team: Team) -> None:
    lead = await team.agent("lead")
    w1 = await team.agent("w1", Role.worker, parent="lead")
    await lead.call("task_create", tasks=[{"key": "a", "title": "A"}])
    claimed = (await w1.call("task_ready", claim=True))["claimed"]
    assert "`result` is" in await refused(team, w1, "task_update", task_id=claimed["id"], status="done", result=BIG)
    many = [f"out/{i}" for i in range(501)]
    assert "`artifacts` has 501 entries" in await refused(
        team, w1, "report_progress", kind="complete", summary="ok", task_id=claimed["id"], artifacts=many
    )
    assert "`body` contains a NUL" in await refused(team, w1, "mail_send", to="lead", body="a\x00b")
    assert "`subject` contains a NUL" in await refused(team, w1, "mail_send", to="lead", body="ok", subject="\x00")
    assert "`summary` contains a NUL" in await refused(team, w1, "report_progress", kind="progress", summary="\x00")


async def test_a_parent_may_be_named_by_a_later_key_of_the_same_call(team: Team) -> None:
    lead = await team.agent("lead")
    created = await lead.call(
        "task_create", tasks=[{"key": "child", "title": "Child", "parent_id": "epic"}, {"key": "epic", "title": "Epic"}]
    )
    ids = {t["key"]: t["id"] for t in created["tasks"]}
    child = (await lead.call("task_get", task_id=ids["child"]))["task"]
    assert child["parent_id"] == ids["epic"]


async def test_a_task_cannot_be_its_own_parent_nor_two_each_others(team: Team) -> None:
    lead = await team.agent("lead")
    text = await refused(team, lead, "task_create", tasks=[{"key": "a", "title": "A", "parent_id": "a"}])
    assert "its own parent" in text
    text = await refused(
        team,
        lead,
        "task_create",
        tasks=[{"key": "a", "title": "A", "parent_id": "b"}, {"key": "b", "title": "B", "parent_id": "a"}],
    )
    assert "each other's parents" in text


@pytest.mark.parametrize(
    ("tool", "arguments", "name"),
    [
        ("task_ready", {"limit": True}, "limit"),
        ("task_list", {"limit": True}, "limit"),
        ("mail_inbox", {"limit": False}, "limit"),
        ("mail_wait", {"timeout_s": True}, "timeout_s"),
        ("report_progress", {"kind": "progress", "summary": "s", "percent": True}, "percent"),
    ],
)
async def test_true_or_false_for_a_number_is_a_type_error_not_one_or_zero(
    team: Team, tool: str, arguments: dict[str, Any], name: str
) -> None:
    """pydantic's lax mode once read `limit=true` as 1 and listed one task without a word."""
    lead = await team.agent("lead")
    text = await refused(team, lead, tool, **arguments)
    assert f"`{name}` must be a number" in text, text
