"""Any coordinator can spawn any worker: credentials reach workers whatever CLI the coordinator runs in.

Codex hands its MCP servers only the variables named in `env_vars`, and Gemini strips names that look
like secrets, so a coordinator's `maestro serve` under either would never have the keys a worker's CLI
needs (the worker then crashed at start: "Missing environment variable", or Gemini's exit 41). Each
adapter declares its CLI's credentials, and every coordinator's server is configured to receive all of
them. Here a REAL headless Codex coordinator (`maestro launch codex --headless`) spawns a Claude and a
Gemini worker, and a Gemini coordinator spawns a Codex worker, all against one scripted model that
plays a different script per API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from agent_clis import describe, log_tail, make_sandbox, open_store, require_cli, run_bounded
from fake_model import FakeModel, ScriptStep

from maestro_mcp.models import ReportKind, Role, SessionStatus

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RUN_S = 150
WORKER: list[ScriptStep] = [("whoami", {}), ("report_progress", {"kind": "progress", "summary": "cross-cli ok"})]
API = {"claude": "anthropic", "codex": "responses", "gemini": "gemini"}
MODEL = {"claude": None, "codex": "gpt-5.1-codex", "gemini": "gemini-2.5-pro"}


def spawn_step(agent: str) -> ScriptStep:
    args: dict[str, Any] = {"agent": agent, "directive": "Say hello.", "name": f"{agent}-w"}
    if MODEL[agent]:
        args["model"] = MODEL[agent]
    return ("spawn_worker", args)


async def workers_ended(db: str, names: list[str]) -> dict[str, Any]:
    """Wait (on the store's notifier) until every named worker has ended; their records."""
    async with open_store(db) as store, store.subscribe("sessions") as bell:
        while True:
            found = {n: await store.get_session(n) for n in names}
            if all(s is not None and not s.live and s.exit_code is not None for s in found.values()):
                return found
            await bell.wait(1.0)


@pytest.mark.parametrize(
    ("coordinator", "workers"),
    [("codex", ["claude", "gemini"]), ("gemini", ["codex"])],
    ids=["codex-lead", "gemini-lead"],
)
async def test_a_coordinator_under_any_cli_spawns_workers_of_any_cli(
    coordinator: str, workers: list[str], tmp_path: Path
) -> None:
    for cli in {coordinator, *workers}:
        require_cli(cli)
    scripts = {API[w]: WORKER for w in workers}
    # The lead stays up (waiting for mail: reports and exit events) while its workers run, so that its
    # server, which watches them, records their exit codes.
    scripts[API[coordinator]] = [*(spawn_step(w) for w in workers), *[("mail_wait", {"timeout_s": 10})] * 3]
    with FakeModel(scripts=scripts) as fm:
        box = make_sandbox(tmp_path, fm.base_url, (coordinator, *workers))
        env = {**box.env, "MAESTRO_KEEP_WORKERS": "1"}  # the lead may finish before its workers do
        code, output = await run_bounded(box.maestro_argv("init"), env=env, cwd=box.project, timeout_s=RUN_S)
        assert code == 0, output
        argv = box.maestro_argv(
            "launch", coordinator, "--headless", "--name", "lead", "--model", MODEL[coordinator] or ""
        )
        code, output = await run_bounded(argv, env=env, cwd=box.project, timeout_s=RUN_S)
        assert code == 0, f"{fm.summary()}\n{output[-3000:]}"
        names = [f"{w}-w" for w in workers]
        with anyio.fail_after(RUN_S):
            ended = await workers_ended(box.db, names)

    async with open_store(box.db) as store:
        lead = await store.get_session("lead")
        assert lead is not None and lead.role is Role.coordinator and lead.agent == coordinator
        for worker in ended.values():
            log = log_tail(worker.log_path)
            context = f"{describe(worker)}\n{fm.summary()}\nlog:\n{log}"
            assert (worker.status, worker.exit_code) == (SessionStatus.exited, 0), context
            assert worker.parent_id == lead.id
            reports = await store.reports(session_id=worker.id)
            assert [(r.kind, r.summary) for r in reports] == [(ReportKind.progress, "cross-cli ok")], context
            assert "Missing environment variable" not in log and "GEMINI_API_KEY" not in log, context
    # The coordinator's model was told it coordinates.
    assert fm.saw("the maestro coordinator"), json.dumps(fm.endpoints())
