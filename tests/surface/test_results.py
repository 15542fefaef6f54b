"""What tools return and what clients can read: compact JSON text beside structuredContent, task_list's
limit and lean tasks, the MCP resources, and what the manifests tell agents about mail and the plan."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from mcp_types import TextContent, TextResourceContents

from maestro_mcp.manifest import ManifestContext, render
from maestro_mcp.models import Role, TaskRecord, TaskStatus

if TYPE_CHECKING:
    from harness import Agent, Team

pytestmark = pytest.mark.anyio

LEAN = {"id", "key", "title", "status", "wave", "assignee", "depends_on", "files", "blocked_reason"}
WHOLE = {"id", "key", "title", "description", "acceptance", "status", "wave", "depends_on", "files", "assignee"}


async def raw_call(agent: Agent, tool: str, **arguments: Any) -> Any:
    return await agent.client._client.call_tool(tool, arguments)


async def test_a_result_is_compact_json_text_beside_the_same_structured_content(team: Team) -> None:
    lead = await team.agent("lead")
    await lead.call("task_create", tasks=[{"key": "a", "title": "A", "description": "x\ny"}])

    for tool in ("whoami", "task_list", "mail_inbox"):
        result = await raw_call(lead, tool)
        [block] = result.content
        assert isinstance(block, TextContent)
        assert json.loads(block.text) == result.structured_content, tool
        assert block.text == json.dumps(result.structured_content, separators=(",", ":"), ensure_ascii=False)


async def test_task_list_shows_fifty_lean_tasks_by_default_and_counts_the_rest(team: Team) -> None:
    lead = await team.agent("lead")
    await lead.call("task_create", tasks=[{"key": f"t{i}", "title": f"T{i}", "description": "long"} for i in range(55)])

    listed = await lead.call("task_list")
    few = await lead.call("task_list", limit=3, status="ready")

    assert len(listed["tasks"]) == 50 and listed["more"] == 5
    assert all(set(t) == LEAN for t in listed["tasks"])
    assert [t["key"] for t in few["tasks"]] == ["t0", "t1", "t2"] and few["more"] == 52
    whole = (await lead.call("task_get", task_id=listed["tasks"][0]["id"]))["task"]
    assert set(whole) >= WHOLE and whole["description"] == "long"


async def test_resources_show_the_plan_a_task_a_thread_and_the_sessions_as_text(team: Team) -> None:
    lead = await team.agent("lead")
    w1 = await team.agent("w1", Role.worker, parent="lead")
    created = await lead.call(
        "task_create",
        tasks=[
            {"key": "api", "title": "Build the API", "acceptance": ["tests pass"], "files": ["api.py"]},
            {"key": "docs", "title": "Write the docs", "depends_on": ["api"]},
        ],
    )
    api, docs = (t["id"] for t in created["tasks"])
    sent = await lead.call("mail_send", to="w1", subject="start", body="Begin with the API.")
    client = lead.client._client

    listed = {str(r.uri) for r in (await client.list_resources()).resources}
    templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}

    async def read(uri: str) -> str:
        [content] = (await client.read_resource(uri)).contents
        assert isinstance(content, TextResourceContents) and content.mime_type == "text/markdown"
        return content.text

    plan, task, thread, sessions = (
        await read("maestro://plan"),
        await read(f"maestro://task/{api}"),
        await read(f"maestro://thread/{sent['thread_id']}"),
        await read("maestro://sessions"),
    )
    assert listed == {"maestro://plan", "maestro://sessions"}
    assert templates == {"maestro://task/{task_id}", "maestro://thread/{thread_id}"}
    assert "## Wave 0" in plan and f"- {api} [ready] Build the API" in plan
    assert "## Wave 1" in plan and f"- {docs} [pending] Write the docs (after {api})" in plan
    assert task.startswith("# Build the API") and "tests pass" in task and "Files: api.py" in task
    assert "Begin with the API." in thread and "- w1: sent" in thread
    assert "- lead (coordinator, script): working, live" in sessions and "- w1 (worker, script, under lead)" in sessions
    assert team.view.receipts(sent["message_id"]) == {"w1": "sent"}, "a look at a resource is no delivery"
    assert (await w1.call("whoami"))["unread"]["count"] == 1


async def test_an_unknown_task_or_thread_resource_says_where_to_look(team: Team) -> None:
    lead = await team.agent("lead")
    client = lead.client._client
    for uri, hint in (("maestro://task/t-nope", "maestro://plan"), ("maestro://thread/m-nope", "first message")):
        with pytest.raises(Exception) as failed:
            await client.read_resource(uri)
        assert hint in str(failed.value), uri


def record(n: int, wave: int, status: TaskStatus = TaskStatus.pending) -> TaskRecord:
    return TaskRecord(
        id=f"t-{n}", key=None, title=f"Task {n}", description="", acceptance="", status=status, priority=0,
        wave=wave, parent_id=None, depends_on=[], files=[], assignee_id=None, created_by=None, result=None,
        artifacts=[], blocked_reason=None, blocked_on_deps=False, attempts=0, created_at=0.0, updated_at=0.0,
    )  # fmt: skip


async def test_manifests_tell_agents_when_to_read_mail_and_cap_the_plan(team: Team) -> None:
    lead = await team.agent("lead")
    w1 = await team.agent("w1", Role.worker, parent="lead")
    worker_text = render(ManifestContext(session=w1.session, coordinator="lead", directive="", tasks=[]), None)
    plan = [record(i, wave=i // 3) for i in range(12)]
    lead_text = render(ManifestContext(session=lead.session, coordinator=None, directive="", tasks=plan), None)

    claim = worker_text.index("`task_ready(claim=true)`")
    assert "`unread.count`" in worker_text[:claim] and "`mail_inbox`" in worker_text[:claim]
    complete = worker_text.index("Before you report `complete`")
    assert "`unread.count`" in worker_text[complete : complete + 120]
    assert "When `mail_wait` returns `timed_out: true`" in lead_text
    assert "t-5" in lead_text and "t-6" not in lead_text, "the current and the next wave in full"
    assert "(and 6 in later waves: see task_list)" in lead_text
