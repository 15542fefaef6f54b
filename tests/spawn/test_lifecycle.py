"""The life of a spawned worker: whoami, stop_worker, its coordinator ending, and a coordinator restart."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from spawnkit import Crew, Mailbox, Project, Watch, coordinator_process

from maestro_mcp.launch.spawner import pid_alive
from maestro_mcp.models import Role

pytestmark = pytest.mark.anyio


def child_pids(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def exit_code_of(watch: Watch, name: str) -> tuple[int] | None:
    """NAME's recorded exit code, once there is one (in a tuple: 0 is an exit code)."""
    code = (await watch.session(name)).exit_code
    return None if code is None else (code,)


@pytest.mark.parametrize(
    ("directive", "ends_by", "grace_s"),
    [
        ("", "the mail", 10.0),
        # Grace enough for the probe to wake, read the mail and report it (three round trips, two commits)
        # on a loaded machine before the signal: the test checks the mail came first.
        ("ignore-stop", "SIGTERM", 3.0),
        pytest.param("ignore-stop ignore-sigterm", "SIGKILL", 3.0, marks=pytest.mark.slow),
    ],
    ids=["obeys-the-mail", "needs-sigterm", "needs-sigkill"],
)
async def test_stop_worker_mails_first_then_terminates_then_kills_and_the_worker_ends_stopped(
    crew: Crew, watch: Watch, directive: str, ends_by: str, grace_s: float
) -> None:
    spawned = await crew.boss.call("spawn_worker", agent=crew.project.agent("probe.py"), name="w1", directive=directive)
    await watch.report_with("w1", "whoami")  # connected and waiting on its mail

    stopped = await crew.boss.call("stop_worker", session_id="w1", reason="the plan changed", grace_s=grace_s)

    assert (stopped["session_id"], stopped["status"]) == (spawned["session_id"], "stopped")
    assert not pid_alive(spawned["pid"])
    # The worker read the reason in a critical mail before any signal.
    told = await watch.report_with("w1", "mail")
    assert told["mail"]["priority"] == "critical"
    assert "the plan changed" in told["mail"]["body"]
    session = await watch.session("w1")
    assert (session.status.value, session.live) == ("stopped", False)
    # The exit code is recorded as soon as the spawner has reaped the process.
    code = {"the mail": 0, "SIGTERM": -signal.SIGTERM, "SIGKILL": -signal.SIGKILL}[ends_by]
    assert await watch.until(lambda: exit_code_of(watch, "w1")) == (code,)
    [event] = (await Mailbox(crew.boss).exits("w1")).values()
    assert event["subject"].startswith("w1 stopped")
    assert "Stopped by boss: the plan changed" in event["body"]


async def test_a_worker_sees_its_coordinator_and_directive_and_is_stopped_when_its_coordinator_ends(
    project: Project, watch: Watch
) -> None:
    async with coordinator_process(project) as boss:
        spawned = await boss.call(
            "spawn_worker", agent=project.agent("probe.py"), name="w1", directive="probe the team"
        )
        first = await watch.report_with("w1", "whoami")
    # The coordinator's server has exited: by default its live workers are told, then stopped.

    me = first["whoami"]
    assert (me["name"], me["role"], me["agent"]) == ("w1", "worker", "script")
    assert (me["coordinator"], me["coordinator_live"], me["directive"]) == ("boss", True, "probe the team")
    told = await watch.report_with("w1", "mail")
    assert (told["mail"]["type"], told["mail"]["priority"], told["mail"]["sender"]) == ("event", "critical", "boss")
    assert "boss ended" in told["mail"]["subject"] and "You are being stopped" in told["mail"]["body"]
    assert told["whoami"]["coordinator_live"] is False
    session = await watch.ended("w1")
    assert session.status.value == "stopped"
    assert not pid_alive(spawned["pid"])
    assert (await watch.session("boss")).status.value == "exited"


async def test_a_restarted_coordinator_still_learns_when_its_workers_exit(project: Project, watch: Watch) -> None:
    """Workers outlive a coordinator server with MAESTRO_KEEP_WORKERS=1; a new server resumed as the same
    session hears of each exit: one that happened while no server ran, and one while the new server runs."""
    boss = await watch.services.sessions.register(name="boss", role=Role.coordinator, agent="script")
    keep = {"MAESTRO_KEEP_WORKERS": "1"}
    agent = project.agent("probe.py")
    async with coordinator_process(project, session=boss.session.id, token=boss.token, env=keep) as first:
        for name in ("w1", "w2"):
            await first.call("spawn_worker", agent=agent, name=name, directive="ignore-stop")
        for name in ("w1", "w2"):
            await watch.report_with(name, "whoami")

    for name in ("w1", "w2"):
        told = await watch.report_with(name, "mail")
        assert told["mail"]["priority"] == "critical"
        assert "Finish your current task" in told["mail"]["body"]
        assert told["whoami"]["coordinator_live"] is False
        assert (await watch.session(name)).live, "kept workers keep working"

    await watch.tell("w1", "exit", "0")  # exits while no coordinator server runs
    await watch.ended("w1")
    async with coordinator_process(project, session=boss.session.id, token=boss.token, env=keep) as second:
        assert (await second.call("whoami"))["session_id"] == boss.session.id
        w2 = await watch.session("w2")
        assert w2.pid is not None
        # The worker and its own server die at once: only the coordinator's pid watch can tell.
        for pid in [*child_pids(w2.pid), w2.pid]:
            os.kill(pid, signal.SIGKILL)
        exits = await Mailbox(second).exits("w1", "w2")

    assert exits["w1"]["subject"].startswith("w1 exited")
    assert exits["w2"]["subject"].startswith("w2 exited")
    assert "adopted after a restart" in exits["w2"]["body"]
