"""A coordinator (a real `maestro serve`) spawns real script workers and follows them through mail alone."""

from __future__ import annotations

import os
import signal
import time

import pytest
from spawnkit import Mailbox, Project, Watch, coordinator_process, report_events

from maestro_mcp.launch.spawner import pid_alive

pytestmark = pytest.mark.anyio

# The issue promises "within a second"; the bound is generous for a loaded machine.
KILL_REPORTED_S = 5.0


async def test_two_workers_claim_their_tasks_mail_each_other_report_and_exit(project: Project, watch: Watch) -> None:
    agent = project.agent("teammate.py")
    async with coordinator_process(project) as boss:
        created = await boss.call(
            "task_create",
            tasks=[
                {"key": "a", "title": "Write a", "files": ["src/a.py"]},
                {"key": "b", "title": "Write b", "files": ["src/b.py"]},
                {"key": "c", "title": "Write c", "files": ["src/c.py"], "depends_on": ["a", "b"]},
            ],
        )
        ids = {t["key"]: t["id"] for t in created["tasks"]}
        w1 = await boss.call(
            "spawn_worker", agent=agent, name="w1", directive="expect=w2", task_ids=[ids["a"], ids["c"]]
        )
        w2 = await boss.call("spawn_worker", agent=agent, name="w2", directive="expect=w1", task_ids=[ids["b"]])
        assert (w1["status"], w2["status"]) == ("spawning", "spawning")
        assert w1["pid"] != w2["pid"] and pid_alive(w1["pid"])

        mailbox = Mailbox(boss)
        exits = await mailbox.exits("w1", "w2")
        tasks = {t["key"]: t for t in (await boss.call("task_list"))["tasks"]}

    # Every report reached the coordinator's mail_wait: one per task, and each worker's last one.
    completes = report_events(mailbox.messages)
    assert sorted(m["task_id"] for m in completes if m["task_id"]) == sorted(ids.values())
    assert sorted(m["sender"] for m in completes if m["task_id"] is None) == ["w1", "w2"]
    # ... and each worker's exit, after its reports.
    for name in ("w1", "w2"):
        event = exits[name]
        assert event["subject"] == f"{name} exited with exit code 0"
        assert event["priority"] == "normal"
        assert mailbox.messages.index(event) > max(mailbox.messages.index(m) for m in completes if m["sender"] == name)
        session = await watch.session(name)
        assert (session.status.value, session.exit_code, session.live) == ("exited", 0, False)

    # The workers did their reserved tasks, and wrote the files.
    assert {k: (t["status"], t["assignee"]) for k, t in tasks.items()} == {
        "a": ("done", "w1"),
        "b": ("done", "w2"),
        "c": ("done", "w1"),
    }
    for key, worker in (("a", "w1"), ("b", "w2"), ("c", "w1")):
        assert (project.root / "src" / f"{key}.py").read_text() == f"# Write {key} by {worker}\n"

    # They heard from each other through `siblings` mail.
    assert (await watch.reports("w1"))[-1] == {"heard_from": ["w2"]}
    assert (await watch.reports("w2"))[-1] == {"heard_from": ["w1"]}


@pytest.mark.parametrize(("max_attempts", "fate"), [(3, "ready"), (1, "failed")], ids=["released", "given-up"])
async def test_a_worker_killed_with_sigkill_is_reported_at_once_and_its_task_released(
    project: Project, watch: Watch, max_attempts: int, fate: str
) -> None:
    agent = project.agent("probe.py")
    async with coordinator_process(project, env={"MAESTRO_MAX_ATTEMPTS": str(max_attempts)}) as boss:
        [task] = (await boss.call("task_create", tasks=[{"title": "Hold me", "files": ["x.py"]}]))["tasks"]
        spawned = await boss.call("spawn_worker", agent=agent, name="w1", directive="claim")
        assert (await watch.report_with("w1", "holding"))["holding"] == task["id"]

        os.kill(spawned["pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        mailbox = Mailbox(boss)
        exits = await mailbox.exits("w1", within=KILL_REPORTED_S)
        latency = time.monotonic() - killed_at
        after = (await boss.call("task_get", task_id=task["id"]))["task"]

    event = exits["w1"]
    assert latency < KILL_REPORTED_S
    assert event["subject"] == f"w1 failed with exit code {-signal.SIGKILL}"
    assert event["priority"] == "high"
    fate_text = "back to ready" if fate == "ready" else "failed"
    assert f"Task {task['id']} (Hold me) released: {fate_text} after 1 attempt(s)." in event["body"]
    assert after["status"] == fate
    if fate == "ready":
        assert after["assignee"] is None  # anyone may claim it again
    session = await watch.session("w1")
    assert (session.status.value, session.exit_code) == ("failed", -signal.SIGKILL)
