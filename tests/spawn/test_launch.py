"""`maestro launch` and `maestro team`: a human starts a coordinator agent with one command."""

from __future__ import annotations

from pathlib import Path

import pytest
from spawnkit import Project, Watch, maestro, maestro_process

pytestmark = pytest.mark.anyio

PLAN = Path(__file__).resolve().parents[2] / "examples" / "plans" / "todo-app.yaml"


@pytest.fixture
def in_project(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.chdir(project.root)  # `maestro launch` runs the agent in the current directory
    return project


async def test_launch_runs_a_script_coordinator_with_its_manifest_and_the_plan_imported(
    in_project: Project, watch: Watch
) -> None:
    agent = in_project.agent("lead.py")

    code, output = await maestro_process(
        in_project, "launch", agent, "--headless", "--plan", str(PLAN), "--name", "lead"
    )

    assert code == 0, output
    assert "imported 6 tasks" in output
    [started] = (await watch.reports("lead"))[:1]
    me, manifest = started["whoami"], started["manifest"]
    assert (me["name"], me["role"], me["agent"], me["coordinator"]) == ("lead", "coordinator", "script", None)
    assert "# You are lead, the maestro coordinator" in manifest
    assert "Define the todo data model" in manifest, "the imported plan is in it"
    for tool in ("task_create", "spawn_worker(agent=", "mail_wait(timeout_s=300)", "stop_worker"):
        assert tool in manifest
    lead = await watch.session("lead")
    assert (lead.status.value, lead.live, lead.exit_code) == ("exited", False, 0)
    assert len(await watch.store.list_tasks()) == 6


async def test_launch_refuses_a_script_agent_without_a_script_and_registers_nothing(
    in_project: Project, watch: Watch
) -> None:
    result = await maestro(in_project, "launch", "script", "--headless", "--plan", str(PLAN))

    assert result.exit_code == 1
    assert "script:path/to/agent.py" in result.output and "Traceback" not in result.output
    assert await watch.store.list_sessions() == [] and await watch.store.list_tasks() == []


async def test_team_starts_a_coordinator_whose_manifest_asks_for_the_team(in_project: Project, watch: Watch) -> None:
    agent = in_project.agent("lead.py")

    code, output = await maestro_process(
        in_project, "team", "--dev", "1", "--agent", agent, "--headless", "--plan", str(PLAN), "--name", "lead"
    )

    assert code == 0, output
    manifest = (await watch.reports("lead"))[0]["manifest"]
    team = manifest.split("## The team to build\n")[1]
    assert team.startswith("Build this team first, then coordinate it:\n- spawn 1 worker(s) with spawn_worker(")
    assert f"spawn_worker(agent={agent!r}, profile='dev', directive=...)" in team
    # The coordinator did as it was told: one developer, who did the plan and exited.
    dev = await watch.session("dev-1")
    assert (dev.profile, dev.status.value, dev.exit_code) == ("dev", "exited", 0)
    assert "## Your role\nYou are a developer." in (in_project.root / ".maestro" / "manifests" / "dev-1.md").read_text()
    assert {t.status.value for t in await watch.store.list_tasks()} == {"done"}
    assert (in_project.root / "todo" / "model.py").is_file()
    # Headless, the terminal follows what happens (the CLI's own output went to its log).
    assert "its output goes to" in output and "dev-1 reports complete" in output, output
    assert "[6/6 tasks done]" in output, output
