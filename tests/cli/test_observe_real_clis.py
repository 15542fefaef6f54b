"""What workers do and spend, with the REAL agent CLIs against the scripted model (offline).

Each worker is spawned by a real coordinator `maestro serve` and runs under the relay, which records
the CLI's structured output. The scripted model answers every turn with fixed usage figures (100 input
and 10 output tokens: fake_model.USAGE_*), so the tokens each CLI reports are known to the token.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from agent_clis import log_tail, make_sandbox, open_store, require_cli
from fake_model import FakeModel

from maestro_mcp.client import AgentClient
from maestro_mcp.models import ActivityKind, SessionStatus, TaskStatus

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RUN_S = 90
CALL_S = 30
CASES = [
    pytest.param("claude", None, id="claude"),
    pytest.param("codex", "gpt-5.1-codex", id="codex"),
    pytest.param("gemini", "gemini-2.5-pro", id="gemini"),
]


async def wait_for_exit(lead: AgentClient, worker: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    with anyio.fail_after(RUN_S):
        while True:
            batch = await lead.call("mail_wait", timeout_s=CALL_S)
            seen += batch["messages"]
            for m in batch["messages"]:
                if m["type"] == "event" and m["subject"].startswith(f"{worker} ") and " with exit code" in m["subject"]:
                    return seen


async def one_task(lead: AgentClient) -> str:
    created = await lead.call("task_create", tasks=[{"key": "t", "title": "Write hello.txt"}])
    return str(created["tasks"][0]["id"])


@pytest.mark.parametrize(("agent", "model"), CASES)
async def test_usage_is_recorded_for_the_worker_and_its_task(agent: str, model: str | None, tmp_path: Path) -> None:
    require_cli(agent)
    with FakeModel() as fm:
        box = make_sandbox(tmp_path, fm.base_url, (agent,))
        async with AgentClient(box.coordinator_params("lead"), read_timeout_s=CALL_S + 30) as lead:
            await lead.call("whoami")
            task_id = await one_task(lead)
            fm.script = [
                ("whoami", {}),
                ("task_ready", {"claim": True}),
                ("report_progress", {"kind": "complete", "summary": "wrote it", "task_id": task_id}),
            ]
            spawned = await lead.call("spawn_worker", agent=agent, directive="go", task_ids=[task_id], model=model)
            await wait_for_exit(lead, spawned["name"])
            turns = len(fm.agent_turns())
            lead_view = await lead.call("whoami")
    context = f"model saw {fm.summary()}\nlog:\n{log_tail(spawned['log_path'])}"
    async with open_store(box.db) as store:
        stats = (await store.session_stats([spawned["session_id"]]))[spawned["session_id"]]
        [billed] = await store.task_usage([task_id])
        events = await store.activity(spawned["session_id"])
    usage = stats.usage
    print(f"{agent}: {turns} agent turns -> {usage}")
    assert (usage.input_tokens, usage.output_tokens, usage.turns) == (100 * turns, 10 * turns, turns), context
    if agent == "claude":
        assert usage.cost_usd > 0 and not usage.cost_estimated, "Claude reports dollars itself"
    else:
        assert usage.cost_usd > 0 and usage.cost_estimated, "dollars priced from tokens are marked estimates"
    assert billed.session_id == spawned["session_id"] and billed.usage == usage, "the task it did is billed"
    assert lead_view["team_spend_usd"] == pytest.approx(usage.cost_usd, abs=1e-4)
    calls = [e.summary for e in events if e.kind is ActivityKind.tool_call]
    assert any("task_ready" in c for c in calls) and any("report_progress" in c for c in calls), events
    assert events[-1].kind is ActivityKind.exit


@pytest.mark.parametrize(("agent", "model"), CASES)
async def test_a_killed_worker_is_respawned_with_its_conversation_name_and_mail(
    agent: str, model: str | None, tmp_path: Path
) -> None:
    require_cli(agent)
    marker = "MAIL-WHILE-DOWN-4417"
    with FakeModel() as fm:
        box = make_sandbox(tmp_path, fm.base_url, (agent,))
        async with AgentClient(box.coordinator_params("lead"), read_timeout_s=CALL_S + 30) as lead:
            await lead.call("whoami")
            task_id = await one_task(lead)
            fm.script = [
                ("whoami", {}),
                ("task_ready", {"claim": True}),
                ("mail_inbox", {}),
                ("task_ready", {"claim": True}),
                ("report_progress", {"kind": "complete", "summary": "done after restart", "task_id": task_id}),
            ]
            third = fm.hold(3)  # the worker is mid-run, its task claimed, when it is killed
            spawned = await lead.call(
                "spawn_worker", agent=agent, directive="go", task_ids=[task_id], name="w", model=model
            )

            def context() -> str:
                return f"model saw {fm.summary()}\nlog:\n{log_tail(spawned['log_path'])}"

            assert await anyio.to_thread.run_sync(fm.wait_turns, 3, RUN_S), context()
            before = len(fm.agent_turns())
            os.killpg(spawned["pid"], signal.SIGKILL)  # the whole worker: relay, CLI and its maestro serve
            third.set()
            await wait_for_exit(lead, "w")
            await lead.call("mail_send", to="w", body=marker)

            again = await lead.call("respawn_worker", session_id="w", directive="carry on")
            assert (again["session_id"], again["name"]) == (spawned["session_id"], "w")
            await wait_for_exit(lead, "w")
    resumed = fm.agent_turns()[before:]
    assert resumed, context()
    first = " ".join(resumed[0].strings())
    # The CLI's own resume: its first request after the restart carries the earlier turns.
    assert "task_ready" in first and "restarted by lead" in first, context()
    assert any(marker in " ".join(r.strings()) for r in resumed), "the mail sent while it was down reached it"
    async with open_store(box.db) as store:
        worker = await store.get_session(spawned["session_id"])
        task = await store.get_task(task_id)
        sessions = await store.list_sessions()
        stats = (await store.session_stats([spawned["session_id"]]))[spawned["session_id"]]
    assert worker is not None and worker.status is SessionStatus.exited, context()
    assert task is not None and (task.status, task.assignee_id) == (TaskStatus.done, spawned["session_id"])
    assert {s.name for s in sessions} == {"lead", "w"}, "the same session, not a new one"
    assert stats.restarts == 1


async def test_a_budget_crossed_stops_a_real_worker_and_tells_the_coordinator(tmp_path: Path) -> None:
    require_cli("claude")
    with FakeModel() as fm:
        box = make_sandbox(tmp_path, fm.base_url, ("claude",))
        async with AgentClient(box.coordinator_params("lead"), read_timeout_s=CALL_S + 30) as lead:
            await lead.call("whoami")
            fm.script = [("whoami", {})] * 30  # keeps working until stopped
            spawned = await lead.call("spawn_worker", agent="claude", directive="go", name="spender", budget_usd=0.0001)
            mail = await wait_for_exit(lead, "spender")
    context = f"model saw {fm.summary()}\nlog:\n{log_tail(spawned['log_path'])}"
    ended = next(m for m in mail if m["subject"].startswith("spender ") and "exit code" in m["subject"])
    assert "stopped" in ended["subject"] and "budget" in ended["body"], (ended, context)
    async with open_store(box.db) as store:
        worker = await store.get_session(spawned["session_id"])
    assert worker is not None and worker.status is SessionStatus.stopped


async def test_logs_follow_shows_a_tool_call_within_a_second(tmp_path: Path) -> None:
    require_cli("claude")
    with FakeModel() as fm:
        box = make_sandbox(tmp_path, fm.base_url, ("claude",))
        async with AgentClient(box.coordinator_params("lead"), read_timeout_s=CALL_S + 30) as lead:
            await lead.call("whoami")
            fm.script = [("whoami", {}), ("list_sessions", {})]
            second = fm.hold(2)
            spawned = await lead.call("spawn_worker", agent="claude", directive="go", name="watched")
            env = {**box.env, "MAESTRO_DB": box.db}
            follow = await anyio.open_process(
                [sys.executable, "-m", "maestro_mcp", "logs", "watched", "-f", "-n", "0"], env=env, cwd=box.project
            )
            try:
                assert await anyio.to_thread.run_sync(fm.wait_turns, 2, RUN_S), fm.summary()
                # Turn 2's request was sent once whoami's result was in: the model now answers list_sessions.
                answered = time.monotonic()
                second.set()
                assert follow.stdout is not None
                seen = b""
                with anyio.fail_after(RUN_S):
                    async for chunk in follow.stdout:
                        seen += chunk
                        if b"list_sessions" in seen:
                            break
                delay = time.monotonic() - answered
            finally:
                follow.terminate()
                with anyio.fail_after(CALL_S):
                    await follow.wait()
            await wait_for_exit(lead, "watched")
    print(f"model answer -> maestro logs -f: {delay * 1000:.0f} ms")
    assert delay < 1.0, f"{delay:.2f} s; log:\n{log_tail(spawned['log_path'])}"
