"""Permission requests answered by the team: who may answer, what a wrong answer gets, what is recorded.

The requests are made as a worker's hook or permission tool makes them (ApprovalService.ask, waiting
in a task); the answers go through the coordinator's real MCP tools (approval_list, approval_decide)
or the operator's `maestro approve` / `deny`. The CLIs themselves are in tests/cli/test_live_delivery.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from maestro_mcp.models import ApprovalStatus, Role, SessionStatus
from maestro_mcp.policy import Decision, ToolCall, Verdict
from maestro_mcp.service.sessions import operator_session
from maestro_mcp.store import mail_topic

if TYPE_CHECKING:
    from harness import Agent, Team

pytestmark = pytest.mark.anyio

WAIT_S = 10
UNDECIDED = Verdict(Decision.ask, "no rule of the policy decides `touch x`")


@asynccontextmanager
async def asking(team: Team, worker: Agent, command: str, timeout_s: float = 30) -> AsyncIterator[dict[str, Verdict]]:
    """The worker's CLI asks about `command` and waits; the verdict it gets lands in the dict."""
    got: dict[str, Verdict] = {}

    async def ask() -> None:
        call = ToolCall("run", "Bash", command=command)
        got["verdict"] = await team.services.approvals.ask(worker.session, call, UNDECIDED, timeout_s)

    async with anyio.create_task_group() as tg:
        async with team.store.subscribe("approvals") as bell:
            tg.start_soon(ask)
            with anyio.fail_after(WAIT_S):
                while not await team.store.list_approvals(status=ApprovalStatus.pending):
                    await bell.wait(1)
        yield got


async def pending_id(lead: Agent) -> str:
    [request] = (await lead.call("approval_list"))["approvals"]
    return str(request["request_id"])


async def test_the_coordinator_is_mailed_and_its_answer_reaches_the_waiting_call(team: Team) -> None:
    lead = await team.agent("lead")
    worker = await team.agent("w1", Role.worker, parent="lead")
    async with asking(team, worker, "touch build.stamp") as got:
        [event] = (await lead.call("mail_wait", timeout_s=WAIT_S))["messages"]
        request_id = await pending_id(lead)
        assert event["type"] == "event" and event["priority"] == "high" and request_id in event["body"]
        assert "touch build.stamp" in event["body"] and event["sender"] == "w1"
        assert (await team.store.get_session("w1")).status is SessionStatus.needs_input  # type: ignore[union-attr]
        decided = await lead.call("approval_decide", request_id=request_id, allow=False, reason="not now")
    assert decided["decision"] == "denied"
    assert got["verdict"].decision is Decision.deny and "not now" in got["verdict"].reason
    record = await team.store.get_approval(request_id)
    assert record is not None and (record.decided_by, record.decision_reason) == (lead.id, "not now")
    assert (await team.store.get_session("w1")).status is SessionStatus.working  # type: ignore[union-attr]


async def test_only_an_ancestor_coordinator_or_the_operator_can_answer(team: Team) -> None:
    lead = await team.agent("lead")
    other = await team.agent("other-lead")
    worker = await team.agent("w1", Role.worker, parent="lead")
    sibling = await team.agent("w2", Role.worker, parent="lead")
    async with asking(team, worker, "touch x"):
        request_id = await pending_id(lead)
        assert (await other.call("approval_list"))["approvals"] == [], "an unrelated coordinator sees nothing"
        # Workers are refused by role before their request is looked at; a coordinator by whose worker it is.
        for who, words in (
            (worker, "approval_decide is for coordinators"),
            (sibling, "you (w2) are a worker"),
            (other, "w1"),
        ):
            text = await who.error("approval_decide", request_id=request_id, allow=True)
            assert words in text and "\n" not in text, text
        await lead.call("approval_decide", request_id=request_id, allow=True)


async def test_a_wrong_or_repeated_answer_is_a_clear_error_and_changes_nothing(team: Team) -> None:
    lead = await team.agent("lead")
    worker = await team.agent("w1", Role.worker, parent="lead")
    text = await lead.error("approval_decide", request_id="a-nosuchthing", allow=True)
    assert "No approval request 'a-nosuchthing'" in text and "approval_list" in text
    async with asking(team, worker, "touch x"):
        request_id = await pending_id(lead)
        await lead.call("approval_decide", request_id=request_id, allow=True, reason="ok")
    again = await lead.error("approval_decide", request_id=request_id, allow=False)
    assert "already allowed: ok" in again
    assert (await team.store.get_approval(request_id)).status is ApprovalStatus.allowed  # type: ignore[union-attr]


async def test_remember_decides_the_same_kind_of_call_for_the_rest_of_the_run(team: Team, tmp_path: Path) -> None:
    lead = await team.agent("lead")
    worker = await team.agent("w1", Role.worker, parent="lead")
    async with asking(team, worker, "touch a.stamp"):
        decided = await lead.call("approval_decide", request_id=await pending_id(lead), allow=True, remember=True)
    assert decided["rule"] == "run:touch"
    verdict = await team.services.approvals.judge(worker.session, ToolCall("run", "Bash", "touch b.stamp"), tmp_path)
    assert verdict.decision is Decision.allow and "run:touch" in verdict.reason
    assert len(await team.store.list_approvals()) == 1, "the second call was not put to anyone"


async def test_a_worker_that_ends_while_it_waits_closes_its_request_and_its_coordinator_is_told(team: Team) -> None:
    lead = await team.agent("lead")
    worker = await team.agent("w1", Role.worker, parent="lead")
    async with asking(team, worker, "touch x", timeout_s=5) as got:
        request_id = await pending_id(lead)
        await team.services.sessions.end(worker.session, SessionStatus.failed, 137)
        events = (await lead.call("mail_wait", timeout_s=WAIT_S))["messages"]
        events += (await lead.call("mail_wait", timeout_s=WAIT_S))["messages"]
    exit_event = next(m for m in events if "w1 failed" in m["subject"])
    assert request_id in exit_event["body"] and "closed unanswered" in exit_event["body"]
    assert (await team.store.get_approval(request_id)).status is ApprovalStatus.closed  # type: ignore[union-attr]
    assert got["verdict"].decision is Decision.deny


async def test_a_maestro_run_workers_requests_go_to_the_operator_not_to_its_scheduler(team: Team) -> None:
    scheduler = await team.agent("run-abc", agent="maestro")  # `maestro run`'s built-in coordinator
    worker = await team.agent("w1", Role.worker, parent="run-abc")
    operator = await operator_session(team.store)
    async with asking(team, worker, "touch deploy.stamp") as got:
        [request] = await team.store.list_approvals(status=ApprovalStatus.pending)
        # The event is mailed just after the request is stored: wait for it, woken by its delivery.
        async with team.store.subscribe(mail_topic(operator.id)) as bell:
            with anyio.fail_after(WAIT_S):
                while not (mail := await team.store.peek_unread(operator.id, 10)):
                    await bell.wait(1)
        [event] = mail
        assert request.decider_id is None  # nobody but the operator decides it
        assert request.id in event.body and "touch deploy.stamp" in event.body
        assert (await scheduler.call("mail_inbox"))["messages"] == []
        done = await team.services.approvals.decide(operator, request.id, allow=True, reason="go")
    assert done.status is ApprovalStatus.allowed and got["verdict"].decision is Decision.allow
