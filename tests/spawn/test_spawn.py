"""spawn_worker itself: what a spawned process gets, and every refusal leaving nothing half-created.

The coordinator is served in this process; the "agent" is a project launcher whose process only sleeps,
so these tests are about spawning, not about an agent.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from spawnkit import Crew, Mailbox, Watch, tool_error

from maestro_mcp.config import Settings
from maestro_mcp.launch.spawner import pid_alive
from maestro_mcp.models import Role

pytestmark = pytest.mark.anyio

CrewFactory = Callable[..., contextlib.AbstractAsyncContextManager[Crew]]


def proc_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


async def refused(crew: Crew, watch: Watch, name: str = "w9", **arguments: Any) -> str:
    """spawn_worker must fail with a tool error and leave nothing behind; returns the error text."""
    before = await watch.snapshot()
    children = crew.children()
    text = await tool_error(crew.boss, "spawn_worker", name=name, **{"directive": "work", **arguments})
    assert await watch.snapshot() == before, "no session, no task reservation"
    assert crew.children() == children, "no process"
    assert crew.project.leftovers(name) == [], "no worktree, log or manifest"
    return text


async def test_a_spawned_worker_gets_its_own_identity_and_the_coordinators_environment(
    crew_factory: CrewFactory, watch: Watch
) -> None:
    base = {**os.environ, "MY_API_KEY": "inherited", "MAESTRO_SESSION": "s-parent", "MAESTRO_EXTRA": "parent's"}
    async with crew_factory(base_env=base) as crew:
        spawned = await crew.boss.call("spawn_worker", agent=crew.project.sleeper(), name="w1", directive="sleep on it")
        assert (spawned["name"], spawned["status"]) == ("w1", "spawning")
        assert pid_alive(spawned["pid"])
        assert spawned["log_path"] == str(crew.project.root / ".maestro" / "logs" / "w1.log")

        env = proc_environ(spawned["pid"])
        assert env["MY_API_KEY"] == "inherited"  # the agent CLI needs its own credentials
        assert env["MAESTRO_SESSION"] == spawned["session_id"]
        assert env["MAESTRO_DB"] == crew.project.db
        assert "MAESTRO_EXTRA" not in env  # nothing of the parent's MAESTRO_* leaks
        worker = await crew.services.sessions.authenticate(env["MAESTRO_SESSION"], env["MAESTRO_TOKEN"])
        boss = await watch.session("boss")
        assert (worker.role, worker.parent_id, worker.directive) == (Role.worker, boss.id, "sleep on it")
        assert os.readlink(f"/proc/{spawned['pid']}/cwd") == str(crew.project.root)  # isolation="shared"
        assert (crew.project.root / ".maestro" / "manifests" / "w1.md").is_file()


async def test_an_unknown_agent_kind_is_refused_with_the_known_ones(crew: Crew, watch: Watch) -> None:
    text = await refused(crew, watch, agent="nosuch")

    assert "No launcher for agent 'nosuch'" in text
    assert "claude, codex, gemini, script" in text and ".maestro/launchers/nosuch.toml" in text


BASE = """
description = "a broken launcher"
binary = "sleep"
adapter = "script"
manifest_via = "file"
prompt = ""
"""


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        (BASE + 'tool_timeout_s = 5\n[headless]\nargv = ["{binary}"]\n', "field `tool_timeout_s`"),
        (BASE.replace('binary = "sleep"\n', "") + '[headless]\nargv = ["{binary}"]\n', "field `binary`"),
        (BASE + "colour = 'red'\n[headless]\nargv = [\"{binary}\"]\n", "field `colour`"),
        (BASE + '[headless]\nargv = ["{binary}", "{nope}"]\n', "unknown placeholder {nope}"),
        (BASE + "[headless\n", "is not valid TOML"),
        (BASE + '[headless]\nargv = ["{binary}", "{script}"]\n', "field `headless.argv` uses {script}"),
    ],
    ids=["out-of-range", "missing", "unknown-field", "unknown-placeholder", "not-toml", "script-placeholder"],
)
async def test_a_launcher_definition_with_errors_is_refused_naming_the_file_and_field(
    crew: Crew, watch: Watch, toml: str, says: str
) -> None:
    path = crew.project.launcher("bad", toml)

    text = await refused(crew, watch, agent="bad")

    assert str(path) in text and says in text


@pytest.mark.parametrize(
    ("agent", "package"),
    [("claude", "@anthropic-ai/claude-code"), ("codex", "@openai/codex"), ("gemini", "@google/gemini-cli")],
)
async def test_an_agent_cli_not_on_path_is_refused_saying_which_package_installs_it(
    crew_factory: CrewFactory, watch: Watch, tmp_path: Path, agent: str, package: str
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    async with crew_factory(base_env={"PATH": str(empty)}) as crew:
        text = await refused(crew, watch, agent=agent)

    assert f"`{agent}` is not on PATH" in text
    assert f"npm install -g {package}" in text


@pytest.mark.parametrize(
    ("script", "says"),
    [("agents/missing.py", "No script at"), ("../outside.py", "outside the project")],
    ids=["missing", "outside"],
)
async def test_a_script_agent_must_exist_inside_the_project(crew: Crew, watch: Watch, script: str, says: str) -> None:
    (crew.project.root.parent / "outside.py").write_text("print('hi')\n")

    assert says in await refused(crew, watch, agent=f"script:{script}")


async def test_a_taken_or_invalid_worker_name_is_refused(crew: Crew, watch: Watch) -> None:
    sleeper = crew.project.sleeper()
    await crew.boss.call("spawn_worker", agent=sleeper, name="w1", directive="first")
    manifest = crew.project.root / ".maestro" / "manifests" / "w1.md"
    written = manifest.read_text()

    before = await watch.snapshot()
    text = await tool_error(crew.boss, "spawn_worker", agent=sleeper, name="w1", directive="second")
    assert "The name 'w1' is taken" in text
    assert await watch.snapshot() == before and len(crew.children()) == 1
    assert manifest.read_text() == written, "the first one's manifest is untouched"

    assert "is taken" in await refused(crew, watch, name="boss", agent=sleeper)
    assert "not a valid session name" in await refused(crew, watch, name="a b", agent=sleeper)
    assert "reserved" in await refused(crew, watch, name="siblings", agent=sleeper)


async def test_only_a_coordinator_may_spawn(crew: Crew, watch: Watch) -> None:
    worker = await crew.member("w0", Role.worker)
    before = await watch.snapshot()

    text = await tool_error(worker, "spawn_worker", agent=crew.project.sleeper(), directive="more hands", name="w9")

    assert text.startswith("spawn_worker is for coordinators and operators; you (w0) are a worker.")
    assert "mail_send(to='coordinator'" in text
    assert await watch.snapshot() == before and crew.children() == []
    assert crew.project.leftovers("w9") == []


async def test_a_worktree_outside_a_git_repository_is_refused(crew: Crew, watch: Watch) -> None:
    text = await refused(crew, watch, agent=crew.project.sleeper(), isolation="worktree")

    assert "needs a git repository" in text and "isolation='shared'" in text
    assert not (crew.project.root / ".maestro" / "worktrees").exists()


async def test_unknown_or_taken_tasks_are_refused_and_none_is_reserved(crew: Crew, watch: Watch) -> None:
    sleeper = crew.project.sleeper()
    created = await crew.boss.call(
        "task_create",
        tasks=[
            {"key": "free", "title": "Free"},
            {"key": "reserved", "title": "Reserved"},
            {"key": "started", "title": "Started", "priority": 10},
            {"key": "finished", "title": "Finished", "priority": 20},
        ],
    )
    ids = {t["key"]: t["id"] for t in created["tasks"]}
    await crew.boss.call("spawn_worker", agent=sleeper, name="w1", directive="mine", task_ids=[ids["reserved"]])
    doer = await crew.member("doer", Role.worker)
    finished = (await doer.call("task_ready", claim=True))["claimed"]
    await doer.call("report_progress", kind="complete", task_id=finished["id"], summary="done")
    started = (await doer.call("task_ready", claim=True))["claimed"]
    assert (finished["id"], started["id"]) == (ids["finished"], ids["started"])

    for bad, says in [
        ("t-nope", "No task 't-nope'"),
        (ids["reserved"], f"Task {ids['reserved']} is ready and already assigned"),
        (ids["started"], f"Task {ids['started']} is in_progress"),
        (ids["finished"], f"Task {ids['finished']} is done"),
    ]:
        text = await refused(crew, watch, agent=sleeper, task_ids=[ids["free"], bad])
        assert says in text, text
    free = (await crew.boss.call("task_get", task_id=ids["free"]))["task"]
    assert (free["status"], free["assignee"]) == ("ready", None)


async def test_the_live_worker_limit_refuses_more_until_one_ends(crew_factory: CrewFactory, watch: Watch) -> None:
    async with crew_factory(config=Settings.load({"MAESTRO_MAX_WORKERS": "2"})) as crew:
        sleeper = crew.project.sleeper()
        for name in ("w1", "w2"):
            await crew.boss.call("spawn_worker", agent=sleeper, name=name, directive="wait")

        text = await refused(crew, watch, name="w3", agent=sleeper)
        assert "You already have 2 live workers; the limit is 2" in text and "MAESTRO_MAX_WORKERS" in text

        await crew.boss.call("stop_worker", session_id="w1", grace_s=0)
        spawned = await crew.boss.call("spawn_worker", agent=sleeper, name="w3", directive="wait")
        assert spawned["status"] == "spawning"


async def test_an_unknown_profile_is_refused(crew: Crew, watch: Watch) -> None:
    text = await refused(crew, watch, agent=crew.project.sleeper(), profile="wizard")

    assert "No role profile 'wizard'" in text and ".maestro/profiles/wizard.md" in text


async def test_a_policy_file_with_an_error_is_refused_naming_file_line_and_field(crew: Crew, watch: Watch) -> None:
    policy = crew.project.root / ".maestro" / "policy.toml"
    policy.write_text('[profiles.dev]\nallow = ["run:pytest", "sometimes"]\n')
    text = await refused(crew, watch, agent=crew.project.sleeper(), profile="dev")
    assert f"{policy}:2" in text and "profiles.dev.allow[1]" in text and "sometimes" in text, text


async def test_a_worker_that_never_connects_is_failed_and_its_coordinator_told(
    crew_factory: CrewFactory, watch: Watch
) -> None:
    async with crew_factory(config=Settings.load({"MAESTRO_CONNECT_GRACE_S": "1"})) as crew:
        [task] = (await crew.boss.call("task_create", tasks=[{"title": "Never started"}]))["tasks"]
        spawned = await crew.boss.call(
            "spawn_worker", agent=crew.project.sleeper(), name="w1", directive="hello?", task_ids=[task["id"]]
        )

        [event] = (await Mailbox(crew.boss).exits("w1", within=10)).values()

        assert event["subject"].startswith("w1 failed") and event["priority"] == "high"
        assert "never connected within 1 s" in event["body"] and "w1.log" in event["body"]
        assert f"Task {task['id']} (Never started) was reserved for it and is unassigned again." in event["body"]
        session = await watch.session("w1")
        assert (session.status.value, session.live) == ("failed", False)
        assert not pid_alive(spawned["pid"]), "its process is stopped"
        after = (await crew.boss.call("task_get", task_id=task["id"]))["task"]
        assert (after["status"], after["assignee"]) == ("ready", None), "anyone may take it now"
