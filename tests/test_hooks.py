"""The hook an agent CLI runs around each tool call, against a real `maestro serve` of that agent.

Urgent mail reaches the model's context at the agent's next step, exactly once, and becomes
`delivered` only then; normal mail is announced, not delivered. Permission requests the policy
does not decide go to the coordinator and wait for its answer, with a bound. A hook that has no
session, a foreign one, or a server that is gone prints nothing and never blocks the CLI.
(The real CLIs are driven through these hooks in tests/cli/test_live_delivery.py.)
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

import maestro_mcp
from maestro_mcp.client import AgentClient, serve_params
from maestro_mcp.errors import Conflict, Forbidden
from maestro_mcp.models import ApprovalStatus, MessageType, Priority, ReceiptStatus, Role, SessionRecord
from maestro_mcp.service import Services
from maestro_mcp.store import create_store

pytestmark = pytest.mark.anyio

HOOK = str(Path(maestro_mcp.__file__).parent / "hook.py")
START_S = 20
HOOK_S = 10


@dataclass
class Worker:
    session: SessionRecord
    token: str
    socket: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "MAESTRO_SESSION": self.session.id,
            "MAESTRO_TOKEN": self.token,
            "MAESTRO_HOOK_SOCKET": self.socket,
        }
        env.update(extra)
        return env


@dataclass
class Rig:
    svc: Services
    lead: SessionRecord
    worker: Worker
    project: Path


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, policy: str | None = None) -> AsyncIterator[Rig]:
    """A coordinator `lead` and its worker `w1` (profile dev), whose own `maestro serve` listens for hooks."""
    project = tmp_path / "project"
    db = project / ".maestro" / "maestro.db"
    db.parent.mkdir(parents=True)
    if policy is not None:
        (project / ".maestro" / "policy.toml").write_text(policy, encoding="utf-8")
    store = create_store(str(db))
    await store.open()
    try:
        svc = Services.create(store)
        lead = (await svc.sessions.register(name="lead", role=Role.coordinator, agent="script")).session
        registered = await svc.sessions.register(
            name="w1", role=Role.worker, agent="claude", parent="lead", workspace=str(project), profile="dev"
        )
        worker = Worker(registered.session, registered.token, str(project / ".maestro" / "run" / "hooks" / "w1.sock"))
        params = serve_params(
            db=str(db),
            session=worker.session.id,
            token=worker.token,
            env={"MAESTRO_HOOK_SOCKET": worker.socket, "MAESTRO_PERMISSIONS": "claude"},
        )
        async with AgentClient(params.model_copy(update={"cwd": str(project)}), read_timeout_s=START_S):
            yield Rig(svc, lead, worker, project)
    finally:
        await store.close()


async def hook(
    env: dict[str, str], event: str, payload: dict[str, Any], *, cli: str = "claude", timeout_s: float = 5
) -> tuple[int, str, float]:
    """Run the hook as the CLI would; its exit code, what it printed, and how long it took."""
    started = time.perf_counter()
    with anyio.fail_after(HOOK_S + timeout_s):
        done = await anyio.run_process(
            [sys.executable, "-S", HOOK, cli, event, str(timeout_s)],
            input=json.dumps(payload).encode(),
            env=env,
            check=False,
        )
    return done.returncode, done.stdout.decode(), time.perf_counter() - started


def context_of(output: str) -> str:
    assert output, "the hook printed nothing"
    text: str = json.loads(output)["hookSpecificOutput"]["additionalContext"]
    return text


def post_tool(tool: str = "Read") -> dict[str, Any]:
    return {"hook_event_name": "PostToolUse", "tool_name": tool, "tool_input": {"file_path": "a.py"}}


def pre_tool(command: str) -> dict[str, Any]:
    return {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command}}


async def receipt(svc: Services, message_id: str, name: str) -> ReceiptStatus:
    [thread] = [m for m in await svc.store.thread(message_id) if m.message_id == message_id]
    return next(r.status for r in thread.receipts if r.name == name)


async def test_urgent_mail_reaches_the_next_step_once_and_is_delivered_only_then(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        sent = await r.svc.mail.send(r.lead, "w1", "Stop: the requirements changed (R-42).", priority=Priority.critical)
        assert await receipt(r.svc, sent.message_id, "w1") is ReceiptStatus.sent

        code, out, _ = await hook(r.worker.env(), "PostToolUse", post_tool())

        assert code == 0
        text = context_of(out)
        assert "Stop: the requirements changed (R-42)." in text and sent.message_id in text and "lead" in text
        assert await receipt(r.svc, sent.message_id, "w1") is ReceiptStatus.delivered
        # Never injected twice: the next steps have nothing more to say.
        assert (await hook(r.worker.env(), "PostToolUse", post_tool("Bash")))[1] == ""
        assert (await r.svc.mail.inbox(r.worker.session, 20, True)).messages == []


async def test_normal_mail_is_announced_once_and_left_unread(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        first = await r.svc.mail.send(r.lead, "w1", "FYI: the docs moved.")

        text = context_of((await hook(r.worker.env(), "PostToolUse", post_tool()))[1])

        assert "1 unread message" in text and "lead" in text and "the docs moved" not in text
        assert await receipt(r.svc, first.message_id, "w1") is ReceiptStatus.sent
        assert (await hook(r.worker.env(), "PostToolUse", post_tool()))[1] == "", "announced once, not every step"
        await r.svc.mail.send(r.lead, "w1", "And the API too.", priority=Priority.low)
        assert "2 unread messages" in context_of((await hook(r.worker.env(), "PostToolUse", post_tool()))[1])


async def test_a_hook_without_a_session_a_foreign_one_or_a_server_gone_prints_nothing(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.svc.mail.send(r.lead, "w1", "urgent", priority=Priority.critical)
        no_session = {k: v for k, v in r.worker.env().items() if k != "MAESTRO_SESSION"}
        assert (await hook(no_session, "PostToolUse", post_tool()))[:2] == (0, "")
        assert (await hook(r.worker.env(MAESTRO_SESSION=r.lead.id), "PostToolUse", post_tool()))[:2] == (0, "")
        assert (await hook(r.worker.env(MAESTRO_TOKEN="wrong"), "PostToolUse", post_tool()))[:2] == (0, "")
        assert (await hook(r.worker.env(), "SessionEnd", post_tool()))[:2] == (0, "")
        worker = r.worker
    # The worker's server has ended: its socket is gone, and the hook does not wait for it.
    code, out, took = await hook(worker.env(), "PostToolUse", post_tool())
    assert (code, out) == (0, "") and took < HOOK_S


def decision_of(output: str) -> tuple[str, str]:
    assert output, "the hook printed nothing"
    found = json.loads(output)["hookSpecificOutput"]
    return found["permissionDecision"], found["permissionDecisionReason"]


async def test_the_policy_decides_what_it_can_without_asking_anyone(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        allowed = decision_of((await hook(r.worker.env(), "PreToolUse", pre_tool("pytest -q")))[1])
        denied = decision_of((await hook(r.worker.env(), "PreToolUse", pre_tool("git push origin main")))[1])
        assert allowed[0] == "allow" and "run:pytest" in allowed[1]
        assert denied[0] == "deny" and "git push" in denied[1]
        assert await r.svc.store.list_approvals() == [], "nothing was put to the team"


async def test_an_undecided_command_waits_for_the_coordinators_answer(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        outcome: dict[str, str] = {}
        async with anyio.create_task_group() as tg:

            async def ask() -> None:
                command = pre_tool("touch relay-allowed")
                outcome["out"] = (await hook(r.worker.env(), "PreToolUse", command, timeout_s=30))[1]

            tg.start_soon(ask)
            with anyio.fail_after(HOOK_S):
                batch = await r.svc.mail.wait(r.lead, HOOK_S, 10)
            [event] = batch.messages
            assert event.type is MessageType.event and event.priority is Priority.high
            assert "touch relay-allowed" in event.body and "w1" in event.subject
            [pending] = await r.svc.approvals.pending_for(r.lead)
            assert pending.id in event.body and pending.input == "touch relay-allowed"
            assert await status(r.svc, "w1") == "needs_input"
            # A worker can never answer its own request.
            with pytest.raises(Forbidden):
                await r.svc.approvals.decide(r.worker.session, pending.id, True)

            await r.svc.approvals.decide(r.lead, pending.id, True, "fine, it is a scratch file")

        decision, reason = decision_of(outcome["out"])
        assert decision == "allow" and "fine, it is a scratch file" in reason and "lead" in reason
        record = await r.svc.store.get_approval(pending.id)
        assert record is not None and record.status is ApprovalStatus.allowed and record.decided_by == r.lead.id
        assert await status(r.svc, "w1") == "working"


async def status(svc: Services, name: str) -> str:
    session = await svc.store.get_session(name)
    assert session is not None
    return session.status.value


async def test_an_unanswered_request_is_denied_when_its_time_runs_out(tmp_path: Path) -> None:
    async with rig(tmp_path, policy="approval_timeout_s = 1\n") as r:
        decision, reason = decision_of((await hook(r.worker.env(), "PreToolUse", pre_tool("touch x"), timeout_s=20))[1])
        assert decision == "deny" and "nobody answered within 1 s" in reason
        [record] = await r.svc.store.list_approvals()
        assert record.status is ApprovalStatus.expired
        with pytest.raises(Conflict, match="already expired"):
            await r.svc.approvals.decide(r.lead, record.id, True)


@pytest.mark.parametrize("answer", [b"", b"garbage with no newline", b"0 - 5 0\nab", b"this is not a header\n"])
async def test_a_hook_whose_server_answers_nonsense_prints_nothing_and_logs_why(tmp_path: Path, answer: bytes) -> None:
    """Whatever goes wrong inside maestro's hook, the CLI carries on as if it were not there."""
    socket_path = str(tmp_path / "h.sock")
    listener = await anyio.create_unix_listener(socket_path)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                await stream.receive()
                if answer:
                    await stream.send(answer)

    env = {
        "PATH": os.environ.get("PATH", ""),
        "MAESTRO_SESSION": "s-x",
        "MAESTRO_TOKEN": "t",
        "MAESTRO_HOOK_SOCKET": socket_path,
    }
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        code, out, took = await hook(env, "PostToolUse", post_tool(), timeout_s=2)
        tg.cancel_scope.cancel()
    assert (code, out) == (0, "")
    assert took < HOOK_S
    log = await anyio.Path(socket_path + ".log").read_text()
    assert "PostToolUse" in log, log
