"""`maestro run` with REAL agent CLI workers (Claude Code, Codex), offline, against the scripted fake model.

The plan has two tasks, the second depending on the first, and the run one worker at a time: the
scheduler spawns a real CLI for the first task, the fake model has it claim its task and report it
complete, the CLI exits; the scheduler then spawns one for the second (Codex with the model the plan
names for it). `maestro run` must exit 0 with both tasks done, each by a worker of the plan's kind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_clis import make_sandbox, open_store, require_cli, run_bounded
from fake_model import FakeModel, ScriptStep

from maestro_mcp.models import TaskStatus

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RUN_S = 240
CASES = [
    pytest.param("claude", "", id="claude"),
    pytest.param("codex", "    model: gpt-5.1-codex\n", id="codex"),
]


@pytest.mark.parametrize(("agent", "model_line"), CASES)
async def test_a_run_of_real_cli_workers_finishes_the_plan_and_exits_0(
    agent: str, model_line: str, tmp_path: Path
) -> None:
    require_cli(agent)
    script: list[ScriptStep] = [
        ("task_ready", {"claim": True}),
        ("report_progress", {"kind": "complete", "summary": "wrote the file"}),
    ]
    with FakeModel(script) as fm:
        box = make_sandbox(tmp_path, fm.base_url, (agent,))
        (box.project / ".git").mkdir()
        (box.project / "plan.yaml").write_text(
            "tasks:\n"
            "  - key: first\n    title: Write first.txt\n"
            f"  - key: second\n    title: Write second.txt\n    depends_on: [first]\n{model_line}"
        )
        env = {k: v for k, v in box.env.items() if not k.startswith("MAESTRO_")}
        code, output = await run_bounded(
            box.maestro_argv("run", "plan.yaml", "--agent", agent, "--workers", "1", "--sync"),
            env=env,
            cwd=box.project,
            timeout_s=RUN_S,
        )
        assert code == 0, f"{output[-4000:]}\nmodel: {fm.summary()}"
        assert "all 2 tasks done" in output
        async with open_store(box.db) as store:
            tasks = {t.key: t for t in await store.list_tasks()}
            workers = [s for s in await store.list_sessions() if s.role.value == "worker"]
            scheduler = [s for s in await store.list_sessions() if s.role.value == "coordinator"]
        assert {k: t.status for k, t in tasks.items()} == {"first": TaskStatus.done, "second": TaskStatus.done}
        assert all(w.agent == agent for w in workers) and 1 <= len(workers) <= 2
        assert [s.agent for s in scheduler] == ["maestro"]
        # Each task reported complete by the model through its CLI, once.
        assert sum(1 for call in fm.tool_calls_made() if call.endswith("report_progress")) == 2
