"""The last metre, with each REAL agent CLI against the scripted model: urgent mail reaches a busy
worker's model mid-run, and its permission prompts go to its coordinator instead of being denied.

The worker is spawned by a real coordinator `maestro serve` (spawn_worker), exactly as in production.
Its scripted model keeps the worker busy with the CLI's own tools (read a file, run a harmless
command) and never calls a maestro tool, so the mail can only reach it through maestro's live
delivery path for that CLI (Claude: its messaging socket; Codex and Gemini: their hooks).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from agent_clis import Sandbox, describe, log_tail, make_sandbox, open_store, require_cli
from fake_model import FakeModel, ScriptStep

from maestro_mcp.client import AgentClient
from maestro_mcp.models import ReceiptStatus

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RUN_S = 120
CALL_S = 30
MARKER = "R-7731 stop and rename the module to kv_store"
DENY_REASON = "relay-denied is not wanted here (D-4410)"
# (agent, model): a named Codex model offers its shell as a plain function tool; Gemini skips its router.
CLIS = [pytest.param("claude", None, id="claude"), pytest.param("codex", "gpt-5.1-codex", id="codex"),
        pytest.param("gemini", "gemini-2.5-pro", id="gemini")]  # fmt: skip


def shell(agent: str, command: str) -> ScriptStep:
    """The CLI's own shell tool, called as its model would."""
    if agent == "claude":
        return ("Bash", {"command": command, "description": "run it"})
    if agent == "codex":
        return ("exec_command", {"cmd": command})
    return ("run_shell_command", {"command": command})


def read(agent: str, path: str) -> ScriptStep:
    if agent == "claude":
        return ("Read", {"file_path": path})
    if agent == "codex":
        return ("exec_command", {"cmd": f"cat {path}"})
    return ("read_file", {"file_path": path})


async def spawn(lead: AgentClient, agent: str, model: str | None, name: str) -> dict[str, Any]:
    created = await lead.call("task_create", tasks=[{"key": "t", "title": "Busy work"}])
    return await lead.call(
        "spawn_worker",
        agent=agent,
        directive="Do the busy work.",
        task_ids=[created["tasks"][0]["id"]],
        name=name,
        model=model,
        profile="dev",
    )


async def wait_exit(lead: AgentClient, name: str, seen: list[dict[str, Any]]) -> None:
    """The coordinator's mail_wait loop until the event that says `name` ended."""
    while True:
        batch = await lead.call("mail_wait", timeout_s=CALL_S)
        seen += batch["messages"]
        if any(m["type"] == "event" and m["subject"].startswith(f"{name} ") and "exit code" in m["subject"]
               for m in batch["messages"]):  # fmt: skip
            return


def occurrences(body: Any, text: str) -> int:
    return json.dumps(body, ensure_ascii=False).count(text)


def box_for(tmp_path: Path, fm: FakeModel, agent: str) -> Sandbox:
    box = make_sandbox(tmp_path, fm.base_url, (agent,))
    (box.project / "notes.txt").write_text("some notes\n")
    return box


@pytest.mark.parametrize(("agent", "model"), CLIS)
async def test_critical_mail_reaches_a_busy_worker_at_its_next_step(
    agent: str, model: str | None, tmp_path: Path
) -> None:
    require_cli(agent)
    steps = [read(agent, "notes.txt"), shell(agent, "echo one"), read(agent, "notes.txt"),
             shell(agent, "echo two"), read(agent, "notes.txt"), shell(agent, "echo three")]  # fmt: skip
    with FakeModel(steps) as fm:
        box = box_for(tmp_path, fm, agent)
        # The third agent turn comes once the worker's second tool call has run: send the mail then.
        third = fm.hold(3)
        async with AgentClient(box.coordinator_params("lead"), read_timeout_s=CALL_S + 30) as lead:
            await lead.call("whoami")
            spawned = await spawn(lead, agent, model, "busy")
            arrived = await anyio.to_thread.run_sync(fm.wait_turns, 3, RUN_S)
            assert arrived, f"the worker never reached its third turn; {fm.summary()}\n{log_tail(spawned['log_path'])}"
            sent = await lead.call("mail_send", to="busy", body=MARKER, priority="critical")
            third.set()
            seen: list[dict[str, Any]] = []
            with anyio.fail_after(RUN_S):
                await wait_exit(lead, "busy", seen)

    turns = fm.agent_turns()
    context = f"{fm.summary()}\nlog:\n{log_tail(spawned['log_path'])}"
    assert len(fm.tool_calls_made()) == 6, f"the worker did not make its six tool calls; {context}"
    carrying = [i for i, turn in enumerate(turns) if occurrences(turn.body, MARKER)]
    assert carrying, f"the mail never reached the model; {context}"
    # It reached the next or the next-but-one request after it was sent (turns 4 or 5, indexes 3 or 4) ...
    assert carrying[0] in (3, 4), f"first seen in agent turn {carrying[0] + 1}; {context}"
    # ... while the worker had made no maestro call at all: only its own tools.
    assert not any("maestro" in (t.answered_tool or "") for t in turns), context
    # Injected once: the latest request holds it exactly once (history, not a repeat).
    assert occurrences(turns[-1].body, MARKER) == 1, context
    async with open_store(box.db) as store:
        [message] = [m for m in await store.thread(sent["message_id"]) if m.message_id == sent["message_id"]]
        assert [r.status for r in message.receipts] == [ReceiptStatus.delivered], context
        worker = await store.get_session(spawned["session_id"])
        assert worker is not None and worker.exit_code == 0, describe(worker) + "\n" + context


@pytest.mark.parametrize(("agent", "model"), CLIS)
async def test_a_permission_request_is_answered_by_the_coordinator(
    agent: str, model: str | None, tmp_path: Path
) -> None:
    require_cli(agent)
    with FakeModel([shell(agent, "touch relay-allowed"), shell(agent, "touch relay-denied")]) as fm:
        box = box_for(tmp_path, fm, agent)
        async with AgentClient(box.coordinator_params("lead"), read_timeout_s=CALL_S + 30) as lead:
            await lead.call("whoami")
            spawned = await spawn(lead, agent, model, "asker")
            decided: list[str] = []
            seen: list[dict[str, Any]] = []
            with anyio.fail_after(RUN_S):
                while len(decided) < 2:
                    batch = await lead.call("mail_wait", timeout_s=CALL_S)
                    seen += batch["messages"]
                    for request in (await lead.call("approval_list"))["approvals"]:
                        if request["request_id"] in decided:
                            continue
                        allow = "relay-allowed" in request["input"]
                        reason = "fine" if allow else DENY_REASON
                        await lead.call("approval_decide", request_id=request["request_id"], allow=allow, reason=reason)
                        decided.append(request["request_id"])
                await wait_exit(lead, "asker", seen)

    context = f"{fm.summary()}\nlog:\n{log_tail(spawned['log_path'])}"
    needs_input = [
        m for m in seen if m["type"] == "event" and m["priority"] == "high" and "asks to use" in m["subject"]
    ]
    assert len(needs_input) == 2, f"{[m['subject'] for m in seen]}; {context}"
    assert (box.project / "relay-allowed").exists(), context
    assert not (box.project / "relay-denied").exists(), context
    # The model's next request carries the denial reason.
    assert occurrences(fm.agent_turns()[-1].body, DENY_REASON) >= 1, context
