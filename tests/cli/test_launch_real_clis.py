"""`maestro launch AGENT --headless --role worker --parent lead` runs the REAL CLI as a registered worker.

A human (here: the test) starts a worker by hand next to a live coordinator `lead`. The CLI,
pointed at the scripted fake model, starts its own `maestro serve` as the session `maestro
launch` registered, calls `whoami` and `report_progress`; the store attributes the report to
that session, and `lead` hears of its end by mail.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from agent_clis import TOOL_PREFIX, describe, make_sandbox, open_store, require_cli, run_bounded
from fake_model import FakeModel

from maestro_mcp.client import AgentClient
from maestro_mcp.models import ReportKind, Role, SessionStatus

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RUN_S = 90
CALL_S = 30
DIRECTIVE = "Survey the repository layout (launch marker L-4410)."
MODELS = {"claude": [], "codex": ["--model", "gpt-5.1-codex"], "gemini": ["--model", "gemini-2.5-pro"]}


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
async def test_launch_headless_worker_reports_as_its_session(agent: str, tmp_path: Path) -> None:
    require_cli(agent)
    name = f"{agent}-hand"
    script = [("whoami", {}), ("report_progress", {"kind": "progress", "summary": "surveyed the layout"})]
    with FakeModel(script) as fm:
        box = make_sandbox(tmp_path, fm.base_url, (agent,))
        async with AgentClient(box.coordinator_params("lead"), read_timeout_s=CALL_S + 30) as lead:
            me = await lead.call("whoami")  # registers `lead`, the parent named below
            argv = box.maestro_argv(
                "launch", agent, "--headless", "--role", "worker", "--parent", "lead", "--name", name,
                "--directive", DIRECTIVE, *MODELS[agent],
            )  # fmt: skip
            code, output = await run_bounded(argv, env=box.env, cwd=box.project, timeout_s=RUN_S)
            context = f"model saw {fm.summary()}\noutput:\n{output[-4000:]}"
            assert code == 0, context
            with anyio.fail_after(CALL_S * 2):
                ended = None
                while ended is None:
                    batch = await lead.call("mail_wait", timeout_s=CALL_S)
                    ended = next((m for m in batch["messages"] if m["subject"].startswith(f"{name} exited")), None)
            assert ended["type"] == "event" and ended["sender"] == name

    async with open_store(box.db) as store:
        worker = await store.get_session(name)
        assert worker is not None
        assert (worker.role, worker.agent, worker.parent_id) == (Role.worker, agent, me["session_id"])
        # Whichever ended it first (its server, or `maestro launch`), the exit code is recorded.
        assert (worker.status, worker.exit_code, worker.live) == (SessionStatus.exited, 0, False), describe(worker)
        assert {s.name for s in await store.list_sessions()} == {"lead", name}, context
        reports = await store.reports(session_id=worker.id)
        assert [(r.kind, r.summary) for r in reports] == [(ReportKind.progress, "surveyed the layout")], context

    prefix = TOOL_PREFIX[agent]
    assert fm.tool_calls_made() == [f"{prefix}whoami", f"{prefix}report_progress"], context
    for text in (f"You are {name}", worker.id, DIRECTIVE, "Working loop"):
        assert fm.saw(text), f"{text!r} not in any request; {context}"
