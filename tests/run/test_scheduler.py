"""The scheduler's decisions, one tick at a time, against a real store: what it does about a crash it
did not see coming. Its workers are stand-ins that record what they are asked (the process tests run
real ones)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pytest
from harness import Team

from maestro_mcp.models import Role, SessionRecord, SessionStatus, TaskRecord, TaskSpec, TaskStatus
from maestro_mcp.service import Services
from maestro_mcp.service.runs import Overrides, RunRecord
from maestro_mcp.service.scheduler import Profile, Scheduler
from maestro_mcp.service.workers import WorkerService

pytestmark = pytest.mark.anyio


class Spawned(Exception):
    """The stand-in cannot start a process: the tick that spawns ends here."""


class Workers:
    """What the scheduler asks of its WorkerService, recorded."""

    def __init__(self) -> None:
        self.respawned: list[str] = []
        self.spawned: list[list[str]] = []

    async def respawn(self, caller: Any, child_id: str, note: str) -> None:
        self.respawned.append(child_id)

    async def spawn(self, caller: Any, **launch: Any) -> None:
        self.spawned.append(list(launch["task_ids"]))
        raise Spawned


@dataclass
class Run:
    """A one-task run of one worker slot: its scheduler session, its one worker `w1`, the task."""

    svc: Services
    worker: SessionRecord
    task: TaskRecord
    workers: Workers
    scheduler: Scheduler


async def one_task_run(team: Team, other_kind: bool = False, slots: int = 1) -> Run:
    """With `other_kind`, the task needs another kind of worker than the run's (`script`)."""
    svc = team.services
    me = (await svc.sessions.register(name="run-x", role=Role.coordinator, agent="maestro")).session
    worker = (await svc.sessions.register(name="w1", role=Role.worker, agent="script", parent=me.id)).session
    [task] = await svc.tasks.create(me, [TaskSpec(key="a", title="A")])
    overrides = {task.id: Overrides(agent="other")} if other_kind else {}
    record = RunRecord(id="x", plan="plan.yaml", agent="script", workers=slots, task_ids=[task.id], overrides=overrides)
    workers = Workers()
    return Run(svc, worker, task, workers, Scheduler(svc, cast(WorkerService, workers), record, me))


async def test_a_worker_that_claims_and_dies_between_two_looks_is_respawned_for_its_task(team: Team) -> None:
    """Its task was never seen in progress under it: the release the end recorded says it held one."""
    run = await one_task_run(team)
    assert await run.scheduler.tick() is None  # w1 is live and free: nothing to do

    claimed = await run.svc.tasks.ready(run.worker, claim=True, limit=5)
    assert claimed.claimed is not None and claimed.claimed.id == run.task.id
    await run.svc.store.end_session(run.worker.id, SessionStatus.failed, 3, max_attempts=3)  # its crash
    assert await run.scheduler.tick() is None

    assert run.workers.respawned == [run.worker.id] and run.workers.spawned == []
    assert run.scheduler.record.crashes == 1


async def test_a_worker_being_stopped_keeps_its_slot_until_it_has_ended(team: Team) -> None:
    """--workers bounds the processes running: no new worker starts while the stopped one may still run."""
    run = await one_task_run(team, other_kind=True)
    run.scheduler.profiles[run.worker.id] = Profile("script", None, None)
    run.scheduler.stopping.add(run.worker.id)  # of the wrong kind for the task, and on its way out

    assert await run.scheduler.tick() is None
    assert run.workers.spawned == []

    await run.svc.store.end_session(run.worker.id, SessionStatus.stopped, 0, max_attempts=3)
    with pytest.raises(Spawned):  # now its slot is free
        await run.scheduler.tick()
    assert run.workers.spawned == [[run.task.id]]


async def test_a_mixed_run_takes_a_released_task_back_so_no_worker_of_another_kind_claims_it(team: Team) -> None:
    run = await one_task_run(team, other_kind=True)
    me = run.scheduler.me
    run.scheduler.profiles[run.worker.id] = Profile("script", None, None)
    run.scheduler.stopping.add(run.worker.id)  # the one slot stays taken, so nothing is handed out
    assert (await run.svc.store.get_task(run.task.id)).assignee_id is None  # type: ignore[union-attr]

    assert await run.scheduler.tick() is None

    assert (await run.svc.store.get_task(run.task.id)).assignee_id == me.id  # type: ignore[union-attr]
    other = (await run.svc.sessions.register(name="w2", role=Role.worker, agent="script")).session
    claimed = await run.svc.tasks.ready(other, claim=True, limit=5)
    assert claimed.claimed is None


async def test_a_worker_that_gave_its_task_back_and_then_died_idle_is_replaced_not_respawned(team: Team) -> None:
    run = await one_task_run(team)
    assert await run.scheduler.tick() is None
    claimed = await run.svc.tasks.ready(run.worker, claim=True, limit=5)
    assert claimed.claimed is not None
    await run.svc.tasks.update(run.worker, run.task.id, status=TaskStatus.ready)  # gives it back
    await run.svc.store.end_session(run.worker.id, SessionStatus.failed, 3, max_attempts=3)

    with pytest.raises(Spawned):
        await run.scheduler.tick()

    assert run.workers.respawned == [] and run.workers.spawned == [[run.task.id]]


async def test_a_worker_someone_else_is_stopping_is_not_handed_work(team: Team) -> None:
    """`maestro stop w1` while the run goes on: the task goes to a new worker, not to one on its way out."""
    run = await one_task_run(team, slots=2)
    run.scheduler.profiles[run.worker.id] = Profile("script", None, None)
    await run.svc.store.set_session_status(run.worker.id, SessionStatus.stopped)

    with pytest.raises(Spawned):
        await run.scheduler.tick()

    assert run.workers.spawned == [[run.task.id]]
