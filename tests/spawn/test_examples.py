"""The example scripted agents in examples/agents/ run as documented and do real work."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import anyio
import pytest
from projectkit import user_env
from spawnkit import WORKER_S

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def test_the_example_coordinator_plans_spawns_two_workers_and_follows_them_to_the_end(tmp_path: Path) -> None:
    project = tmp_path / "todo"
    env = user_env()

    with anyio.fail_after(WORKER_S * 2):
        done = await anyio.run_process(
            [sys.executable, str(EXAMPLES / "agents" / "coordinator.py"), str(project)], env=env, check=False
        )
    output = done.stdout.decode()

    assert done.returncode == 0, output + done.stderr.decode()
    assert "planned 6 tasks from todo-app.yaml" in output
    # Every report and both exits reached the coordinator's mail_wait loop.
    assert output.count(": complete t-") == 6
    assert "[event] ada: ada exited with exit code 0" in output
    assert "[event] grace: grace exited with exit code 0" in output
    assert f"the todo app is in {project}" in output
    # The workers wrote a real module for every Python file of the plan, and the docs page.
    for name in ("model", "storage", "cli", "api"):
        module = runpy.run_path(str(project / "todo" / f"{name}.py"))
        assert module["TASK_ID"].startswith("t-") and module["describe"]()
    assert (project / "docs" / "todo.md").read_text().startswith("# User documentation")
    assert "TASK_ID" in (project / "tests" / "test_todo.py").read_text()
    assert {line.split()[1] for line in output.splitlines() if line.split()[:1] in (["model"], ["docs"])} == {"done"}
