"""spawn_worker starts each REAL agent CLI (Claude Code, Codex, Gemini) headless, offline.

The coordinator is a real `maestro serve` whose environment points the CLIs at a scripted fake
model on 127.0.0.1 (and at a temporary HOME / CODEX_HOME). `spawn_worker` launches the CLI
exactly as in production, from the launcher definition; the CLI starts its own `maestro serve`,
which must act as the spawned worker's session. The fake model has the worker call `whoami`,
claim its task and report it complete, then stop: the coordinator's `mail_wait` sees the
report and the worker's exit, and the store and the model's recorded requests say the rest.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from agent_clis import TOOL_PREFIX, describe, log_tail, make_sandbox, open_store, require_cli
from fake_model import FakeModel

from maestro_mcp.client import AgentClient
from maestro_mcp.models import ReportKind, SessionStatus, TaskStatus

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# Whole exchange, from spawn to the exit event; a normal run takes a few seconds.
RUN_S = 90
CALL_S = 30
DIRECTIVE = "Write hello.txt for the greeting feature: « café » 🚀 (directive marker D-7731)."
# (agent, model): with a model named, Codex offers MCP tools as plain function tools and Gemini
# skips its model-router call. Codex's default model runs in "code mode": MCP tools deferred
# behind one JS `exec` tool, through which the model calls them.
CASES = [
    pytest.param("claude", None, id="claude"),
    pytest.param("codex", "gpt-5.1-codex", id="codex"),
    pytest.param("codex", None, id="codex-code-mode"),
    pytest.param("gemini", "gemini-2.5-pro", id="gemini"),
]


async def wait_for_exit(lead: AgentClient, worker: str) -> list[dict[str, Any]]:
    """The coordinator's mail_wait loop, until the event that says `worker` ended; every message seen."""
    seen: list[dict[str, Any]] = []
    while True:
        batch = await lead.call("mail_wait", timeout_s=CALL_S)
        seen += batch["messages"]
        for message in batch["messages"]:
            subject = message["subject"]
            if message["type"] == "event" and subject.startswith(f"{worker} ") and " with exit code" in subject:
                return seen


@pytest.mark.parametrize(("agent", "model"), CASES)
async def test_spawned_cli_reports_as_its_worker_session(agent: str, model: str | None, tmp_path: Path) -> None:
    require_cli(agent)
    with FakeModel() as fm:
        box = make_sandbox(tmp_path, fm.base_url, (agent,))
        started = time.monotonic()
        async with AgentClient(box.coordinator_params("lead"), read_timeout_s=CALL_S + 30) as lead:
            me = await lead.call("whoami")
            created = await lead.call(
                "task_create",
                tasks=[{"key": "hello", "title": "Write hello.txt", "acceptance": "hello.txt says hello"}],
            )
            task_id = created["tasks"][0]["id"]
            fm.script = [
                ("whoami", {}),
                ("task_ready", {"claim": True}),
                ("report_progress", {"kind": "complete", "summary": "wrote hello.txt", "task_id": task_id}),
            ]
            spawned = await lead.call(
                "spawn_worker",
                agent=agent,
                directive=DIRECTIVE,
                task_ids=[task_id],
                name=f"{agent}-w",
                model=model,
            )
            worker_id, log = spawned["session_id"], spawned["log_path"]
            try:
                with anyio.fail_after(RUN_S):
                    mail = await wait_for_exit(lead, f"{agent}-w")
            except TimeoutError:
                pytest.fail(f"{agent} worker never exited; model saw {fm.summary()}\nlog:\n{log_tail(log)}")
        elapsed = time.monotonic() - started

    context = f"model saw {fm.summary()}\nlog:\n{log_tail(log)}"
    async with open_store(box.db) as store:
        worker = await store.get_session(worker_id)
        assert worker is not None
        assert (worker.status, worker.exit_code) == (SessionStatus.exited, 0), describe(worker) + "\n" + context
        assert (worker.agent, worker.parent_id) == (agent, me["session_id"])
        # The CLI's own server resumed the spawned session: nobody registered another one.
        assert {s.name for s in await store.list_sessions()} == {"lead", f"{agent}-w"}, context
        reports = await store.reports(session_id=worker_id)
        assert [(r.kind, r.task_id, r.summary) for r in reports] == [
            (ReportKind.complete, task_id, "wrote hello.txt")
        ], context
        task = await store.get_task(task_id)
        assert task is not None
        assert (task.status, task.assignee_id) == (TaskStatus.done, worker_id)

    senders = {(m["sender"], m["type"]) for m in mail}
    assert (f"{agent}-w", "event") in senders
    complete = [m for m in mail if m["task_id"] == task_id and "complete" in m["subject"]]
    assert complete and complete[0]["sender"] == f"{agent}-w", mail

    # The CLI called the maestro tools, in the scripted order, without an approval prompt.
    prefix = TOOL_PREFIX[agent]
    assert fm.tool_calls_made() == [f"{prefix}whoami", f"{prefix}task_ready", f"{prefix}report_progress"], context
    code_mode = agent == "codex" and model is None
    if code_mode:  # only the namespace is named; the model reaches the tools through `exec`
        assert fm.saw("mcp__maestro"), context
    else:
        assert {f"{prefix}whoami", f"{prefix}mail_wait", f"{prefix}report_progress"} <= fm.offered_tools(), context
    # The manifest reached the model: identity, coordinator, directive, task, working loop.
    for text in (f"You are {agent}-w", worker_id, "lead", DIRECTIVE, task_id, "Working loop", "`whoami`"):
        assert fm.saw(text), f"{text!r} not in any request; {context}"
    print(f"{agent}: spawn -> exit event in {elapsed:.1f} s")
