"""Observing and steering a running team: status, sessions, mail, steer, stop, tasks retry|cancel.

The team is a set of in-memory agents (real MCP servers over one SQLite store, see tests/conftest.py)
in the project the CLI runs in, so what the human does is checked against what the agents see.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from human_support import amaestro, opened

from maestro_mcp.models import ReceiptStatus, Role, SessionStatus, TaskStatus

if TYPE_CHECKING:
    from harness import Agent, Team

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plans"


@pytest.fixture
async def crew(project: Path, team: Team) -> tuple[Agent, Agent, Agent]:
    """lead (coordinator) with workers w1 and w2; a 3-task plan in 2 waves; w1 is working on `model`."""
    assert Path(team.location) == project / ".maestro" / "maestro.db"
    lead = await team.agent("lead")
    w1 = await team.agent("w1", Role.worker, parent="lead")
    w2 = await team.agent("w2", Role.worker, parent="lead")
    await lead.call(
        "task_create",
        tasks=[
            {"key": "model", "title": "Data model", "files": ["app/model.py"]},
            {"key": "api", "title": "HTTP API", "depends_on": ["model"]},
            {"key": "docs", "title": "User guide", "depends_on": ["model"]},
        ],
    )
    claimed = (await w1.call("task_ready", claim=True))["claimed"]
    assert claimed["key"] == "model"
    await w1.call("report_progress", kind="progress", summary="schema drafted", task_id=claimed["id"])
    await lead.call("mail_send", to="w2", subject="heads up", body="api is yours next")
    return lead, w1, w2


async def test_status_json_has_sessions_tasks_mail_directives_and_counts(crew: tuple[Agent, Agent, Agent]) -> None:
    _, w1, _ = crew
    steer = await amaestro("steer", "keep the API small")
    assert steer.code == 0, steer.output

    result = await amaestro("status", "--json")

    assert result.code == 0, result.output
    status = json.loads(result.out)
    assert set(status) >= {"sessions", "tasks", "messages", "directives", "counts"}
    by_name = {s["name"]: s for s in status["sessions"]}
    assert set(by_name) >= {"lead", "w1", "w2"}
    for s in status["sessions"]:
        assert {"session_id", "role", "status", "live", "current_task", "last_report", "unread"} <= set(s)
    assert (
        by_name["w1"]["current_task"].split()[0] == (await w1.call("task_list", status="in_progress"))["tasks"][0]["id"]
    )
    assert by_name["w1"]["last_report"] == "progress: schema drafted"
    assert by_name["w2"]["current_task"] is None
    assert by_name["w2"]["unread"] == 2  # lead's mail and the directive
    assert {t["key"]: t["wave"] for t in status["tasks"]} == {"model": 0, "api": 1, "docs": 1}
    assert [d["text"] for d in status["directives"]] == ["keep the API small"]
    subjects = [m["subject"] for m in status["messages"]]
    assert "heads up" in subjects
    heads_up = next(m for m in status["messages"] if m["subject"] == "heads up")
    assert [(r["name"], r["status"]) for r in heads_up["receipts"]] == [("w2", "sent")]
    assert status["counts"]["messages"] == len(status["messages"])
    assert status["counts"]["reports"] >= 1


async def test_status_prints_sessions_waves_mail_and_steering(crew: tuple[Agent, Agent, Agent]) -> None:
    assert (await amaestro("steer", "no new dependencies")).code == 0

    result = await amaestro("status")

    assert result.code == 0, result.output
    for text in ("lead", "w1", "w2", "wave 0", "wave 1", "model", "heads up", "no new dependencies", "tasks 0/3 done"):
        assert text in result.out, f"{text!r} missing from `maestro status`:\n{result.out}"


async def test_sessions_json_lists_every_session_with_role_status_and_liveness(
    crew: tuple[Agent, Agent, Agent], team: Team
) -> None:
    _, _, w2 = crew
    await team.services.sessions.end(w2.session, SessionStatus.failed, 3)

    result = await amaestro("sessions", "--json")

    assert result.code == 0, result.output
    rows = {s["name"]: s for s in json.loads(result.out)}
    assert rows["lead"]["role"] == "coordinator"
    assert rows["w1"]["parent"] == "lead" and rows["w1"]["live"] is True
    assert (rows["w2"]["status"], rows["w2"]["live"], rows["w2"]["exit_code"]) == ("failed", False, 3)
    text = await amaestro("sessions")
    assert text.code == 0 and "w2" in text.out and "failed" in text.out


async def test_mail_send_as_operator_shows_in_ls_as_sent_and_in_the_thread(
    crew: tuple[Agent, Agent, Agent], team: Team
) -> None:
    _, w1, _ = crew

    sent = await amaestro("mail", "send", "w1", "please add tests", "--subject", "from the human")

    assert sent.code == 0, sent.output
    message_id = sent.out.split()[1]
    assert message_id.startswith("m-") and "w1" in sent.out
    ls = await amaestro("mail", "ls")
    line = next(row for row in ls.out.splitlines() if message_id in row)
    assert "operator -> w1:sent" in line and "from the human" in line
    operator = await team.store.get_session("operator")
    assert operator is not None and operator.role is Role.operator

    inbox = await w1.call("mail_inbox")
    mine = [m for m in inbox["messages"] if m["message_id"] == message_id]
    assert mine and mine[0]["sender"] == "operator" and mine[0]["body"] == "please add tests"

    thread = await amaestro("mail", "thread", message_id)
    assert thread.code == 0, thread.output
    assert "please add tests" in thread.out
    assert "-> w1: delivered" in thread.out, "the thread should show the receipt the agent's read produced"
    assert "w1:delivered" in next(r for r in (await amaestro("mail", "ls")).out.splitlines() if message_id in r)


async def test_mail_reply_from_an_agent_reaches_the_operators_thread(crew: tuple[Agent, Agent, Agent]) -> None:
    _, w1, _ = crew
    sent = await amaestro("mail", "send", "w1", "status?")
    message_id = sent.out.split()[1]

    await w1.call("mail_send", to="operator", body="halfway", reply_to=message_id)

    thread = await amaestro("mail", "thread", message_id)
    assert thread.code == 0, thread.output
    assert thread.out.index("status?") < thread.out.index("halfway")
    assert "-> operator: delivered" in thread.out


async def test_steer_to_one_session_shows_in_its_whoami_and_arrives_as_critical_directive_mail(
    crew: tuple[Agent, Agent, Agent],
) -> None:
    _, w1, w2 = crew

    result = await amaestro("steer", "use sqlite, not postgres", "--to", "w1", "--priority")

    assert result.code == 0, result.output
    directive_id = result.out.split()[1]
    assert directive_id.startswith("d-") and "w1" in result.out
    mine = (await w1.call("whoami"))["directives"]
    assert [(d["directive_id"], d["text"], d["to"], d["priority"]) for d in mine] == [
        (directive_id, "use sqlite, not postgres", "w1", True)
    ]
    assert (await w2.call("whoami"))["directives"] == [], "a directive for w1 must not show to w2"
    inbox = (await w1.call("mail_inbox"))["messages"]
    directive_mail = [m for m in inbox if m["type"] == "directive"]
    assert len(directive_mail) == 1
    assert directive_mail[0]["priority"] == "critical"
    assert directive_mail[0]["body"] == "use sqlite, not postgres"
    assert directive_id in directive_mail[0]["subject"]
    assert inbox[0]["type"] == "directive", "critical mail comes first"


async def test_steer_without_to_reaches_every_live_agent(crew: tuple[Agent, Agent, Agent]) -> None:
    result = await amaestro("steer", "stop and write tests")

    assert result.code == 0, result.output
    for agent in crew:
        me = await agent.call("whoami")
        assert [d["text"] for d in me["directives"]] == ["stop and write tests"]
        assert me["unread"]["urgent"] is True
        got = [m for m in (await agent.call("mail_inbox"))["messages"] if m["type"] == "directive"]
        assert [m["body"] for m in got] == ["stop and write tests"]


async def test_steer_clear_removes_one_directive_then_all(crew: tuple[Agent, Agent, Agent]) -> None:
    _, w1, _ = crew
    first = (await amaestro("steer", "first")).out.split()[1]
    await amaestro("steer", "second")

    cleared = await amaestro("steer", "--clear", first)

    assert cleared.code == 0, cleared.output
    assert [d["text"] for d in (await w1.call("whoami"))["directives"]] == ["second"]
    everything = await amaestro("steer", "--clear")
    assert everything.code == 0 and "1" in everything.out
    assert (await w1.call("whoami"))["directives"] == []
    assert json.loads((await amaestro("status", "--json")).out)["directives"] == []


async def test_stop_a_live_agent_tells_it_why_and_marks_it_stopped(
    crew: tuple[Agent, Agent, Agent], team: Team
) -> None:
    _, _, w2 = crew

    result = await amaestro("stop", "w2", "--reason", "wrong approach", "--grace", "0")

    assert result.code == 0, result.output
    assert "w2 is stopped" in result.out
    record = await team.store.get_session("w2")
    assert record is not None and record.status is SessionStatus.stopped and not record.live
    stop_mail = [m for m in (await w2.call("mail_inbox"))["messages"] if "wrong approach" in m["body"]]
    assert stop_mail and stop_mail[0]["priority"] == "critical"


async def test_tasks_cancel_and_retry(crew: tuple[Agent, Agent, Agent], team: Team) -> None:
    lead, w1, _ = crew
    model = (await w1.call("task_list", status="in_progress"))["tasks"][0]
    await w1.call("report_progress", kind="failed", summary="tests are red", task_id=model["id"])
    assert (await lead.call("task_get", task_id=model["id"]))["task"]["status"] == "failed"

    retried = await amaestro("tasks", "retry", model["id"])

    assert retried.code == 0, retried.output
    assert f"{model['id']} is now ready" in retried.out
    assert (await team.services.tasks.get(model["id"])).status is TaskStatus.ready

    docs = next(t for t in (await lead.call("task_list"))["tasks"] if t["key"] == "docs")
    cancelled = await amaestro("tasks", "cancel", docs["id"], "--reason", "not needed")
    assert cancelled.code == 0, cancelled.output
    record = await team.services.tasks.get(docs["id"])
    assert record.status is TaskStatus.cancelled and record.result == "not needed"
    listing = await amaestro("tasks")
    assert "[cancelled]" in listing.out and "[ready]" in listing.out


async def test_mail_ls_reflects_reads_and_acks(crew: tuple[Agent, Agent, Agent]) -> None:
    _, _, w2 = crew
    got = (await w2.call("mail_inbox"))["messages"]
    await w2.call("mail_ack", message_ids=[got[0]["message_id"]])

    ls = await amaestro("mail", "ls")

    assert ls.code == 0
    line = next(row for row in ls.out.splitlines() if "heads up" in row)
    assert "w2:acked" in line


async def test_status_counts_match_the_store(crew: tuple[Agent, Agent, Agent], project: Path) -> None:
    status: dict[str, Any] = json.loads((await amaestro("status", "--json")).out)
    async with opened(project / ".maestro" / "maestro.db") as svc:
        counts = await svc.store.counts()
    assert status["counts"] == counts
    assert counts[ReceiptStatus.sent.value] >= 1


async def test_tasks_import_shows_the_waves_and_status_lists_the_tasks(project: Path) -> None:
    plan = EXAMPLES / "todo-app.yaml"

    result = await amaestro("tasks", "import", str(plan))

    assert result.code == 0, result.output
    assert result.out.startswith("imported 6 tasks")
    assert "wave 0" in result.out and "wave 2" in result.out
    status = json.loads((await amaestro("status", "--json")).out)
    assert len(status["tasks"]) == 6
    assert {t["status"] for t in status["tasks"] if t["wave"] == 0} == {"ready"}
    assert [s["name"] for s in status["sessions"]] == ["operator"], "plans are imported as the operator"
