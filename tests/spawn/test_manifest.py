"""What a spawned worker is told: its manifest (.maestro/manifests/NAME.md), a project's own template, and
the workflow prompts the server offers coordinators."""

from __future__ import annotations

import pytest
from mcp import Client
from spawnkit import Crew, Watch

from maestro_mcp.server import ProcessIdentity, Runtime, build_server

pytestmark = pytest.mark.anyio

LOOP_TOOLS = ("whoami", "task_ready(claim=true)", "mail_wait", "report_progress", "mail_send", "mail_inbox", "mail_ack")


async def test_a_worker_manifest_says_who_it_is_its_team_its_tasks_its_files_and_how_to_work(
    crew: Crew, watch: Watch
) -> None:
    sleeper = crew.project.sleeper()
    created = await crew.boss.call(
        "task_create",
        tasks=[
            {"key": "api", "title": "Build the API", "files": ["src/api.py"]},
            {
                "key": "docs",
                "title": "Document the API",
                "description": "Every endpoint, with an example.",
                "files": ["docs/api.md", "docs/index.md"],
                "acceptance": ["each endpoint has an example", "the index links it"],
            },
        ],
    )
    ids = {t["key"]: t["id"] for t in created["tasks"]}
    await crew.boss.call("spawn_worker", agent=sleeper, name="builder", directive="build", task_ids=[ids["api"]])
    operator = await watch.operator()
    await watch.services.steering.steer(operator, "Keep every change small.", None, True)

    spawned = await crew.boss.call(
        "spawn_worker",
        agent=sleeper,
        name="writer",
        directive="Write the docs for the API builder's work.",
        task_ids=[ids["docs"]],
        profile="review",
    )

    manifest = (crew.project.root / ".maestro" / "manifests" / "writer.md").read_text()
    # identity and coordinator
    assert "# You are writer, a maestro worker" in manifest
    assert f"Your session is\n`{spawned['session_id']}` (role: worker, agent: sleeper)" in manifest
    assert "your coordinator is **boss**" in manifest
    # its directive, role profile and the operator's steering
    assert "## Your directive\nWrite the docs for the API builder's work." in manifest
    assert "## Your role\nYou are a reviewer" in manifest
    assert "- [PRIORITY] Keep every change small." in manifest
    # its tasks, with acceptance criteria, and the files it owns
    assert f"- **{ids['docs']}** Document the API [ready]" in manifest
    assert "  Every endpoint, with an example." in manifest
    assert "Acceptance: - each endpoint has an example\n  - the index links it" in manifest
    assert "## Files you own\n- docs/api.md\n- docs/index.md\n" in manifest
    assert "src/api.py" not in manifest.split("## Your team")[0], "a sibling's files are not its own"
    # its siblings and their tasks
    assert "## Your team\n- builder [spawning]: Build the API" in manifest
    # the working loop, with the exact tool names
    loop = manifest.split("## Working loop")[1]
    for tool in LOOP_TOOLS:
        assert f"`{tool}" in loop, tool


async def test_a_project_template_overrides_the_worker_manifest(crew: Crew) -> None:
    template = crew.project.root / ".maestro" / "templates" / "worker.md"
    template.parent.mkdir(parents=True)
    template.write_text("House rules for ${name}, reporting to ${coordinator}.\nTasks:\n${tasks}\n${unknown}\n")
    [task] = (await crew.boss.call("task_create", tasks=[{"title": "Tidy up"}]))["tasks"]

    await crew.boss.call(
        "spawn_worker", agent=crew.project.sleeper(), name="w1", directive="tidy", task_ids=[task["id"]]
    )

    manifest = (crew.project.root / ".maestro" / "manifests" / "w1.md").read_text()
    expected = f"House rules for w1, reporting to boss.\nTasks:\n- **{task['id']}** Tidy up [ready]\n${{unknown}}\n"
    assert manifest == expected


async def test_the_workflow_prompts_render_instructions_that_use_the_tools(crew: Crew) -> None:
    identity = ProcessIdentity(crew.services, crew.team.task_group)
    async with Client(build_server(Runtime(crew.services, identity, crew.workers))) as client:
        listed = {p.name for p in (await client.list_prompts()).prompts}
        assert {"fan_out", "pipeline", "review_loop"} <= listed

        fan_out = await client.get_prompt("fan_out", {"goal": "Port the app", "workers": "4", "agent": "codex"})
        pipeline = await client.get_prompt("pipeline", {"goal": "Ship it", "stages": "design, build ,test"})
        review = await client.get_prompt("review_loop", {"goal": "Harden it", "developers": "2", "reviewers": "1"})

    def text(result: object) -> str:
        return "\n".join(m.content.text for m in result.messages)  # type: ignore[attr-defined]

    assert "Goal: Port the app" in text(fan_out)
    assert "spawn_worker(agent='codex', directive=...) 4 times" in text(fan_out)
    for tool in ("task_create", "task_ready(claim=true)", "mail_wait"):
        assert tool in text(fan_out)
    assert "design -> build -> test" in text(pipeline) and "depending on the stage before it" in text(pipeline)
    assert "profile='dev') x2" in text(review) and "profile='review') x1" in text(review)
    assert "stop_worker" in text(review)


async def test_a_cli_workers_manifest_says_what_it_may_run_what_needs_approval_and_that_its_own_tools_are_scratch(
    crew: Crew,
) -> None:
    from maestro_mcp import adapters
    from maestro_mcp.models import Role
    from maestro_mcp.policy import builtin_policy
    from maestro_mcp.service.workers import build_manifest

    registered = await crew.services.sessions.register(
        name="dev-1", role=Role.worker, agent="claude", parent="boss", profile="dev"
    )
    text = await build_manifest(
        crew.services.store,
        registered.session,
        crew.project.root,
        rules=builtin_policy().for_profile("dev"),
        adapter=adapters.load("claude", crew.project.root),
    )
    section = text.split("## What you may do\n")[1].split("\n## ")[0]
    assert "Without asking: read files; edit files in your workspace;" in section and "`pytest`" in section
    assert "Never: the network" in section and "`git push`" in section
    assert "Anything else is put to your coordinator" in section and "600 s" in section
    assert "TodoWrite" in section and "private scratch" in section and "Coordinate through maestro" in section
