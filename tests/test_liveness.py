"""Liveness without a spawner, with real processes: agents a human started, SIGKILLed with their servers.

Once, 50 of 50 such sessions stayed live with their tasks `in_progress` until the coordinator exited.
Now another server notices within 10 s, by the dead pid on the same host or by the silence of the
heartbeat from another host (MAESTRO_HOST stands in for another machine), ends the session, puts its
task back to ready and tells its coordinator with an event.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from harness import Team
from projectkit import db_of, new_project, user_env

from maestro_mcp.cli.common import services_at
from maestro_mcp.client import AgentClient, serve_params
from maestro_mcp.models import Role, SessionStatus, TaskSpec, TaskStatus

pytestmark = pytest.mark.anyio

AGENT = str(Path(__file__).with_name("liveness_agent.py"))
START_S = 30
NOTICED_S = 10


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return new_project(tmp_path)


async def start_agent(project: Path, name: str, env: dict[str, str]) -> tuple[anyio.abc.Process, str]:
    """A human-started agent and its server, holding one task; returns the agent and the task id."""
    process = await anyio.open_process(
        [sys.executable, AGENT, db_of(project), name, "lead"], env=user_env() | env, cwd=project, stderr=None
    )
    assert process.stdout is not None
    with anyio.fail_after(START_S):
        line = b""
        async for chunk in process.stdout:
            line += chunk
            if b"\n" in line:
                break
    task = json.loads(line.decode())["task"]
    assert task is not None
    return process, task


async def kill_with_its_server(project: Path, process: anyio.abc.Process, name: str) -> None:
    async with services_at(db_of(project)) as svc:
        session = await svc.store.get_session(name)
    assert session is not None and session.pid is not None and session.pid != process.pid
    os.kill(process.pid, signal.SIGKILL)
    os.kill(session.pid, signal.SIGKILL)
    await process.wait()


async def events(lead: AgentClient, wanted: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while len(found) < wanted:
        got = await lead.call("mail_wait", timeout_s=NOTICED_S)
        found += [m for m in got["messages"] if m["type"] == "event" and "exited" in m["subject"]]
    return found


@pytest.mark.parametrize("where", ["same host", "another host"])
async def test_agents_killed_with_their_servers_are_ended_and_their_tasks_released_within_10_s(
    project: Path, where: str
) -> None:
    names = ["w1", "w2", "w3"]

    def env(name: str) -> dict[str, str]:
        # Each on a host of its own: agents sharing one host name would judge each other by pid, as
        # servers on one real machine do, and the test would see "is gone" instead of "silent since".
        return {"MAESTRO_DB": db_of(project)} | (
            {"MAESTRO_HOST": f"{name}.elsewhere"} if where == "another host" else {}
        )

    lead_server = serve_params(db=db_of(project), name="lead", cwd=str(project))
    async with AgentClient(lead_server, read_timeout_s=START_S) as lead:
        with anyio.fail_after(START_S):
            await lead.call("task_create", tasks=[{"title": f"job {n}"} for n in names])
        agents = [await start_agent(project, name, env(name)) for name in names]
        for (process, _), name in zip(agents, names, strict=True):
            await kill_with_its_server(project, process, name)
        with anyio.fail_after(NOTICED_S + 2):  # noticed within 10 s, with room for this test's own calls
            told = await events(lead, len(names))
        listed = {t["id"]: t for t in (await lead.call("task_list"))["tasks"]}
        sessions = {s["name"]: s for s in (await lead.call("list_sessions"))["sessions"]}
    assert sorted(m["subject"].split()[0] for m in told) == names
    for message in told:
        assert "released: back to ready" in message["body"], message["body"]
        assert ("is gone" if where == "same host" else "silent since") in message["body"], message["body"]
    for _, task in agents:
        assert listed[task]["status"] == "ready" and listed[task]["assignee"] is None, listed[task]
    assert not any(sessions[n]["live"] for n in names)
    assert sessions["lead"]["live"], "the judge itself is not judged"


async def test_a_live_agent_on_another_host_is_not_taken_for_dead(project: Path) -> None:
    """Its heartbeat keeps it live for longer than the expiry, though no pid of it can be checked here."""
    env = {"MAESTRO_DB": db_of(project), "MAESTRO_HOST": "elsewhere.example", "MAESTRO_HEARTBEAT_S": "0.5"}
    lead_server = serve_params(
        db=db_of(project), name="lead", cwd=str(project), env={"MAESTRO_HEARTBEAT_EXPIRY_S": "3"}
    )
    async with AgentClient(lead_server, read_timeout_s=START_S) as lead:
        with anyio.fail_after(START_S):
            await lead.call("task_create", tasks=[{"title": "job"}])
        process, task = await start_agent(project, "w1", env)
        try:
            # Three expiry periods of waiting for mail: a wrong verdict would arrive as an event. Six beats
            # fit in one period, so only a stall of 2.5 s on a loaded machine could look like a death.
            with anyio.fail_after(START_S):
                got = await lead.call("mail_wait", timeout_s=9)
            assert got["timed_out"] and not got["messages"], got
            listed = {t["id"]: t for t in (await lead.call("task_list"))["tasks"]}
            assert listed[task]["status"] == "in_progress"
        finally:
            process.kill()
            await process.wait()


async def test_a_worker_whose_spawner_died_before_starting_it_is_ended_and_its_tasks_freed(project: Path) -> None:
    """The coordinator was SIGKILLed between registering a worker and starting its agent: no process
    of the worker ever ran, so nothing else would end it, and its reserved task would stay reserved."""
    lead_server = serve_params(db=db_of(project), name="lead", cwd=str(project))
    async with AgentClient(lead_server, read_timeout_s=START_S) as lead:
        with anyio.fail_after(START_S):
            created = await lead.call("task_create", tasks=[{"title": "mine"}, {"title": "theirs"}])
        ids = [t["id"] for t in created["tasks"]]
        # A pid that no longer runs: the process printed it and exited.
        dead_pid = int((await anyio.run_process([sys.executable, "-c", "import os; print(os.getpid())"])).stdout)
        async with services_at(db_of(project)) as svc:
            host = svc.liveness.host
            # Registered first, so that the sweep that ends the other one has judged this one too.
            for name, task_id in (("vouched", ids[1]), ("orphan", ids[0])):
                worker = await svc.sessions.register(
                    name=name, role=Role.worker, agent="script", parent="lead",
                    status=SessionStatus.spawning, spawner=(os.getpid(), host),
                )  # fmt: skip
                await svc.store.update_task(task_id, expect=TaskStatus.ready, assignee_id=worker.session.id)
            # Its spawner dies only now, with its task reserved (the lead's sweep may come at any moment).
            await svc.store.revive_session(worker.session.id, SessionStatus.spawning, None, spawner=(dead_pid, host))
        with anyio.fail_after(NOTICED_S + 2):
            told: list[dict[str, Any]] = []
            while not told:
                got = await lead.call("mail_wait", timeout_s=NOTICED_S)
                told = [m for m in got["messages"] if m["type"] == "event" and "orphan" in m["subject"]]
        listed = {t["id"]: t for t in (await lead.call("task_list"))["tasks"]}
        sessions = {s["name"]: s for s in (await lead.call("list_sessions"))["sessions"]}
    assert "the spawn was interrupted" in told[0]["body"] and "unassigned again" in told[0]["body"], told[0]
    assert (listed[ids[0]]["status"], listed[ids[0]]["assignee"]) == ("ready", None)
    assert not sessions["orphan"]["live"]
    assert sessions["vouched"]["live"] and listed[ids[1]]["assignee"] == "vouched", "a live spawner vouches for it"


async def test_the_workers_of_a_coordinator_found_dead_are_told_to_end_and_take_no_new_task(team: Team) -> None:
    """Each new task one of them took on its way out would be torn from it by its exit and counted a failed
    attempt: three orphans in turn gave a plan's task up for good."""
    svc = team.services
    dead_pid = int((await anyio.run_process([sys.executable, "-c", "import os; print(os.getpid())"])).stdout)
    lead = (await svc.sessions.register(name="lead", role=Role.coordinator, agent="script", pid=dead_pid)).session
    await svc.store.heartbeat(lead.id, svc.liveness.host)  # judged by its pid, on this host
    worker = (await svc.sessions.register(name="w1", role=Role.worker, agent="script", parent=lead.id)).session
    [task] = await svc.tasks.create(lead, [TaskSpec(title="next")])

    ended = await svc.liveness.sweep()

    assert [s.name for s in ended] == ["lead"]
    [told] = [m for m in await team.store.peek_unread(worker.id, limit=10) if m.subject == "lead ended"]
    assert "Report what you have, then end." in told.body
    looked = await svc.tasks.ready(worker, claim=True, limit=5)
    assert looked.claimed is None and "Your coordinator lead has ended: you take no new tasks" in looked.skipped[0]
    assert (await svc.store.get_task(task.id)).status is TaskStatus.ready  # type: ignore[union-attr]
