"""`maestro run`'s records: a run of a plan, kept as shared state under ``run.<id>`` (plan, parameters,
tasks, status, summary), so that `maestro run status` and `wait` work from any process; creating a run
(its scheduler session and its tasks) and reopening a stopped or failed one. The scheduler that drives a
run is in `scheduler.py`.
"""

from __future__ import annotations

import contextlib
import json
import os

from pydantic import Field

from maestro_mcp.errors import Conflict, InvalidArgument, NotFound
from maestro_mcp.ids import new_id
from maestro_mcp.models import SCHEDULER_AGENT, Model, Role, SessionRecord, TaskRecord, TaskStatus, now
from maestro_mcp.runplan import RunPlan
from maestro_mcp.service import Services

RUN_KEY = "run.{}"


class Overrides(Model):
    agent: str | None = None
    model: str | None = None
    budget_usd: float | None = None


class RunRecord(Model):
    """A run as shared state holds it (`run.<id>`)."""

    id: str
    plan: str
    params: dict[str, str] = Field(default_factory=dict)
    agent: str
    workers: int
    timeout_s: float | None = None
    status: str = "running"
    """running, done, failed, stopped (Ctrl-C or maestro stop), timed_out."""
    coordinator: str | None = None
    pid: int | None = None
    task_ids: list[str] = Field(default_factory=list)
    overrides: dict[str, Overrides] = Field(default_factory=dict)
    """Per task id, only for tasks that override the run's agent, model or budget."""

    @property
    def open_pool(self) -> bool:
        """Every task needs the same kind of worker, so the run's workers claim them themselves."""
        return not self.overrides

    crashes: int = 0
    started_at: float = 0.0
    ended_at: float | None = None
    summary: str = ""

    @property
    def resumable(self) -> bool:
        return self.status in ("failed", "stopped", "timed_out")


async def save(svc: Services, record: RunRecord) -> None:
    await svc.state.set(None, RUN_KEY.format(record.id), record.model_dump_json())


async def load(svc: Services, run_id: str) -> RunRecord:
    entry = await svc.state.get(RUN_KEY.format(run_id))
    if entry is None:
        raise NotFound(f"No run {run_id!r}.", "`maestro state ls run.` lists the runs of this project.")
    return RunRecord.model_validate_json(entry.value)


async def runs(svc: Services) -> list[RunRecord]:
    return [RunRecord.model_validate_json(e.value) for e in await svc.state.listed("run.")]


async def latest_for(svc: Services, plan: str) -> RunRecord | None:
    mine = [r for r in await runs(svc) if r.plan == plan]
    return max(mine, key=lambda r: r.started_at) if mine else None


async def create_run(
    svc: Services,
    plan: RunPlan,
    *,
    params: dict[str, str],
    agent: str,
    workers: int,
    timeout_s: float | None,
    plan_label: str,
    run_id: str | None = None,
) -> RunRecord:
    """Store the run and its tasks (reserved for the run's scheduler session) in one batch."""
    run_id = run_id or new_id("run")
    scheduler = await register_scheduler(svc, run_id)
    mixed = any((t.agent and t.agent != agent) or t.model or t.budget_usd for t in plan.tasks)
    # One kind of worker for every task: an open pool, which the run's workers claim from themselves the
    # moment they are free (the scheduler wakes the idle ones). Several kinds: every task is reserved for
    # the scheduler, which hands each to a worker of its kind.
    specs = (
        [t.spec.model_copy(update={"assignee": scheduler.id}) for t in plan.tasks]
        if mixed
        else [t.spec for t in plan.tasks]
    )
    created = await svc.tasks.create(scheduler, specs)
    overrides = {
        task.id: Overrides(agent=spec.agent, model=spec.model, budget_usd=spec.budget_usd)
        for task, spec in zip(created, plan.tasks, strict=True)
        if (spec.agent and spec.agent != agent) or spec.model or spec.budget_usd
    }
    record = RunRecord(
        id=run_id,
        plan=plan_label,
        params=params,
        agent=agent,
        workers=workers,
        timeout_s=timeout_s,
        coordinator=scheduler.id,
        pid=os.getpid(),
        task_ids=[t.id for t in created],
        overrides=overrides,
        started_at=now(),
    )
    await save(svc, record)
    return record


async def register_scheduler(svc: Services, run_id: str) -> SessionRecord:
    name = f"run-{run_id.removeprefix('run-')}"
    taken = await svc.sessions.take_over(name, parent=None, pid=os.getpid())
    if taken is not None:
        return taken
    registered = await svc.sessions.register(name=name, role=Role.coordinator, agent=SCHEDULER_AGENT, pid=os.getpid())
    return registered.session


async def reopen(svc: Services, record: RunRecord, from_task: str | None = None) -> tuple[RunRecord, SessionRecord]:
    """A stopped or failed run goes on: done tasks stay done, failed ones are retried. With `from_task`
    (a key or id of the run), that task and every task depending on it run again, even if done; the
    run may then be a finished one too."""
    if not record.resumable and not (from_task and record.status == "done"):
        raise Conflict(
            f"Run {record.id} is {record.status}: only a failed, stopped or timed-out run can be resumed.",
            "Use --resume-from TASK to run part of it again." if record.status == "done" else "Wait for it to end.",
        )
    tasks = await svc.store.get_tasks(record.task_ids)
    again = _downstream(list(tasks.values()), from_task) if from_task else []
    scheduler = await register_scheduler(svc, record.id)
    for task in again:
        if task.status in (TaskStatus.done, TaskStatus.failed, TaskStatus.cancelled, TaskStatus.blocked):
            # Below task_update's rules (done is final for agents): running a plan again from a task is
            # the operator's decision. Back to ready, each waits for its dependencies again.
            await svc.store.update_task(task.id, expect=task.status, status=TaskStatus.ready, unassign=True)
    for task in (await svc.store.get_tasks(record.task_ids)).values():
        if task.status is TaskStatus.failed:
            await svc.tasks.update(scheduler, task.id, status=TaskStatus.ready)
    # The scheduler's end gave its reserved tasks back to the pool: reserve them again, so that no
    # worker takes one that is not handed to it.
    for task in (await svc.store.get_tasks(record.task_ids)).values() if not record.open_pool else ():
        if task.assignee_id is None and task.status in (TaskStatus.pending, TaskStatus.ready, TaskStatus.blocked):
            with contextlib.suppress(Conflict):
                await svc.store.update_task(task.id, expect=task.status, assignee_id=scheduler.id)
    record = record.model_copy(
        update={"status": "running", "coordinator": scheduler.id, "pid": os.getpid(), "ended_at": None, "crashes": 0}
    )
    await save(svc, record)
    return record, scheduler


def _downstream(tasks: list[TaskRecord], start: str) -> list[TaskRecord]:
    """`start` (key or id) and every task of `tasks` that depends on it, in dependency order."""
    found = next((t for t in tasks if start in (t.key, t.id)), None)
    if found is None:
        keys = ", ".join(t.key or t.id for t in tasks[:20])
        raise NotFound(f"The run has no task {start!r}.", f"Name one of its tasks by key or id: {keys}.")
    picked = {found.id}
    ordered = [found]
    for task in sorted(tasks, key=lambda t: t.wave):  # dependents are in later waves
        if task.id not in picked and any(d in picked for d in task.depends_on):
            picked.add(task.id)
            ordered.append(task)
    return ordered


def check_options(workers: int, timeout_s: float | None, max_workers: int) -> None:
    if workers < 1:
        raise InvalidArgument(f"--workers {workers}: a run needs at least one worker.", "Use --workers 1 or more.")
    if workers > max_workers:
        raise InvalidArgument(
            f"--workers {workers} is above the limit of {max_workers} live workers.",
            "Use fewer, or raise MAESTRO_MAX_WORKERS.",
        )
    if timeout_s is not None and timeout_s <= 0:
        raise InvalidArgument(f"--timeout {timeout_s:g} is not positive.", "Give the run's time limit in seconds.")


def record_json(record: RunRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), indent=2)
