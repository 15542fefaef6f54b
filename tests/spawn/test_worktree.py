"""isolation="worktree": a worker in its own git worktree and branch, and `maestro merge` bringing the work back."""

from __future__ import annotations

import os

import anyio
import pytest
from spawnkit import Crew, Mailbox, Watch, maestro

from maestro_mcp.models import TaskStatus

pytestmark = pytest.mark.anyio


async def test_a_worktree_worker_runs_in_its_own_worktree_on_its_own_branch(crew: Crew, watch: Watch) -> None:
    crew.project.git_init()

    spawned = await crew.boss.call(
        "spawn_worker", agent=crew.project.sleeper(), name="w1", directive="alone", isolation="worktree"
    )

    tree = crew.project.root / ".maestro" / "worktrees" / "w1"
    assert os.readlink(f"/proc/{spawned['pid']}/cwd") == str(tree)
    assert crew.project.git("-C", str(tree), "rev-parse", "--abbrev-ref", "HEAD") == "maestro/w1"
    assert crew.project.git("rev-parse", "--abbrev-ref", "HEAD") == "main", "the project stays on its branch"
    # maestro's own files (store, logs, manifests, worktrees) stay out of the project's commits; the launcher
    # definition the test wrote is the project's own, and committable.
    untracked = crew.project.git("status", "--porcelain", "--untracked-files=all").splitlines()
    assert untracked == ["?? .maestro/launchers/sleeper.toml"]
    session = await watch.session("w1")
    assert (session.isolation, session.branch, session.workspace) == ("worktree", "maestro/w1", str(tree))
    manifest = (crew.project.root / ".maestro" / "manifests" / "w1.md").read_text()
    assert f"Your own git worktree, {tree}, on branch `maestro/w1`. Commit your changes there" in manifest


async def test_merge_brings_finished_branches_back_in_dependency_order_and_stops_at_the_first_conflict(
    crew: Crew, watch: Watch
) -> None:
    project = crew.project
    project.git_init()
    created = await crew.boss.call(
        "task_create",
        tasks=[
            {"key": "a", "title": "A", "files": ["shared.py", "a.py"]},
            {"key": "b", "title": "B", "files": ["shared.py", "b.py"], "depends_on": ["a"]},
            {"key": "d", "title": "D", "files": ["d.py"], "depends_on": ["b"]},
        ],
    )
    ids = {t["key"]: t["id"] for t in created["tasks"]}
    agent = project.agent("teammate.py")
    # Spawned in reverse, so that the merge order comes from the tasks, not from the spawn order.
    for name, key in (("w3", "d"), ("w2", "b"), ("w1", "a")):
        await crew.boss.call(
            "spawn_worker", agent=agent, name=name, directive="commit", task_ids=[ids[key]], isolation="worktree"
        )
    await Mailbox(crew.boss).exits("w1", "w2", "w3")
    assert {t["key"]: t["status"] for t in (await crew.boss.call("task_list"))["tasks"]} == dict.fromkeys("abd", "done")

    planned = await maestro(project, "merge", "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert [line.split(":")[0] for line in planned.output.splitlines()] == ["wave 0", "wave 1", "wave 2"]
    assert "maestro/w1 (w1)" in planned.output.splitlines()[0]
    assert project.git("log", "--format=%s") == "start", "a dry run merges nothing"

    merged = await maestro(project, "merge")

    assert merged.exit_code == 1
    assert "merged maestro/w1" in merged.output
    # w2 built B on a branch that never saw A's shared.py: both added it.
    assert "conflict merging maestro/w2 from w2 in: shared.py" in merged.output
    assert f"tasks involved: {ids['b']} (B)" in merged.output
    assert "maestro/w3" not in merged.output, "it stops at the first conflict"
    assert (project.root / "shared.py").read_text() == "# A by w1\n"
    assert (project.root / "a.py").exists() and not (project.root / "b.py").exists()
    assert project.git("status", "--porcelain") == "", "the failed merge was aborted"


async def test_merge_warns_about_work_a_worker_left_uncommitted(crew: Crew, watch: Watch) -> None:
    project = crew.project
    project.git_init()
    [task] = (await crew.boss.call("task_create", tasks=[{"title": "Forgetful", "files": ["f.py"]}]))["tasks"]
    spawned = await crew.boss.call(
        "spawn_worker", agent=project.sleeper(), name="w1", directive="x", task_ids=[task["id"]], isolation="worktree"
    )
    # What an agent that forgot to commit leaves: a done task, and a file only in its worktree.
    store = watch.store
    await store.claim_task(spawned["session_id"], 1)
    await store.update_task(task["id"], expect=TaskStatus.in_progress, status=TaskStatus.done)
    await anyio.Path(project.root / ".maestro" / "worktrees" / "w1" / "f.py").write_text("print('lost?')\n")
    await crew.boss.call("stop_worker", session_id="w1", grace_s=0)

    merged = await maestro(project, "merge")

    assert merged.exit_code == 0, merged.output
    assert "w1 left uncommitted changes in" in merged.output and "f.py" in merged.output
