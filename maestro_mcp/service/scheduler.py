"""`maestro run`'s scheduler: a plan run by a built-in, deterministic scheduler instead of an LLM coordinator.

The scheduler is a coordinator session of agent kind `maestro`. It keeps up to N workers alive,
spawned through the same `WorkerService.spawn` that `spawn_worker` uses, and hands each free one a
ready task (reserving it for that worker and telling it by mail). When every task needs one kind of
worker, the run's tasks are an open pool: a worker that finishes claims its next task itself, with
no round trip through the scheduler. When tasks need different kinds (per-task `agent` / `model` /
`budget_usd`), every task is reserved for the scheduler at import, so a worker only ever gets tasks
of its own kind, and tasks queue behind busy workers of their kind. Dependencies (and so waves) and
declared files (a task whose files overlap one that is held waits) are honoured either way.

A crashed worker's task goes back to ready through the usual release (bounded by
`MAESTRO_MAX_ATTEMPTS` per task) and the scheduler spawns a replacement; the run as a whole gives up
after `max_crashes` crashes. The run's record is in `runs.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio

from maestro_mcp.config import SAFETY_POLL_S
from maestro_mcp.errors import Conflict, MaestroError, NotFound
from maestro_mcp.files import any_overlap
from maestro_mcp.models import (
    ApprovalStatus,
    Priority,
    SessionRecord,
    SessionStatus,
    TaskRecord,
    TaskStatus,
    Usage,
    now,
)
from maestro_mcp.service import Services
from maestro_mcp.service.activity import money
from maestro_mcp.service.runs import RunRecord
from maestro_mcp.service.workers import WorkerService
from maestro_mcp.store.notify import ALL

FINISHED = (TaskStatus.done,)
BAD = (TaskStatus.failed, TaskStatus.cancelled)
STOP_GRACE_S = 10.0
REPORT_EVERY_S = 0.25
QUEUE_DEPTH = 2
"""Ready tasks reserved behind a busy worker's current one, so that the scheduler's own latency is hidden
behind the worker's work; a free worker steals them first."""


@dataclass(frozen=True)
class Profile:
    agent: str
    model: str | None
    budget_usd: float | None


@dataclass
class Progress:
    """What a live display shows, after every change the scheduler sees."""

    total: int
    done: int
    failed: list[str]
    workers: list[tuple[str, str, str, str]]
    """(name, status, current action, spend) of each live worker."""
    crashes: int
    spend: str = "-"
    """What the run's workers spent so far, all of them (`~` when estimated from token counts)."""
    approvals: list[str] = field(default_factory=list)
    """Permission requests of the run's workers waiting for the operator: `id worker: tool input`."""


@dataclass
class Outcome:
    status: str
    summary: str
    failed: list[tuple[TaskRecord, str]] = field(default_factory=list)
    """Each failed task with its last report (or result)."""


class Scheduler:
    """Keeps up to `record.workers` workers busy until every task of the run is done or cannot be."""

    def __init__(
        self,
        svc: Services,
        workers: WorkerService,
        record: RunRecord,
        me: SessionRecord,
        *,
        max_crashes: int | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.svc = svc
        self.store = svc.store
        self.workers = workers
        self.record = record
        self.me = me
        self.max_crashes = max_crashes if max_crashes is not None else max(3, 2 * record.workers)
        self.on_progress = on_progress
        self.profiles: dict[str, Profile] = {}
        self.counted: set[str] = set()
        """Ends already seen, as `session id@ended_at` (a respawned worker can end again)."""
        self.holding: dict[str, str] = {}
        """worker id -> the task it had in progress at the last look."""
        self.respawned = 0
        self.reported_at = 0.0
        self.ids = set(record.task_ids)
        self.told: set[tuple[str, str]] = set()
        """(task id, worker id) pairs the worker was mailed about."""
        self.to_respawn: dict[str, str] = {}
        """crashed worker id -> the task it held, until that task is released and the worker respawned."""
        self.stopping: set[str] = set()
        self.handed: dict[str, float] = {}
        """task id -> when it was handed out (for the benchmark's overhead figures)."""
        self.became_ready: dict[str, float] = {}

    def profile(self, task_id: str) -> Profile:
        extra = self.record.overrides.get(task_id)
        agent = (extra.agent if extra else None) or self.record.agent
        return Profile(agent, extra.model if extra else None, extra.budget_usd if extra else None)

    async def run(self) -> Outcome:
        # A resumed run's scheduler is the same session: the ends of its earlier workers are not new crashes.
        for child in await self.store.list_sessions(parent_id=self.me.id):
            if not child.live:
                self.counted.add(f"{child.id}@{child.ended_at}")
        async with self.store.subscribe(ALL) as bell:
            while True:
                outcome = await self.tick()
                if outcome is not None:
                    return outcome
                await bell.wait(SAFETY_POLL_S)

    async def _all(self) -> list[TaskRecord]:
        tasks = await self.store.get_tasks(self.record.task_ids)
        return [tasks[t] for t in self.record.task_ids if t in tasks]

    async def _moving(self) -> list[TaskRecord]:
        """The run's tasks that are ready, in progress or blocked: three index ranges, however large the
        plan (reading every task on every change made a 1,000-task plan's scheduler its bottleneck)."""
        found: list[TaskRecord] = []
        for status in (TaskStatus.ready, TaskStatus.in_progress, TaskStatus.blocked):
            found += [t for t in await self.store.list_tasks(status=status) if t.id in self.ids]
        return found

    async def tick(self) -> Outcome | None:
        ordered = await self._moving()
        if not any(t.status in (TaskStatus.ready, TaskStatus.in_progress) for t in ordered):
            ordered = await self._all()  # the end, or a stall: look at everything
        tasks = {t.id: t for t in ordered}
        children = await self.store.list_sessions(parent_id=self.me.id)
        live = {s.id: s for s in children if s.live}
        # Stopped by someone else (`maestro stop`): on its way out, like those this scheduler stops.
        self.stopping |= {s.id for s in live.values() if s.status is SessionStatus.stopped}
        crashed: list[SessionRecord] = []
        for child in children:
            end = f"{child.id}@{child.ended_at}"
            if not child.live and end not in self.counted:
                self.counted.add(end)
                if child.status is SessionStatus.failed and child.id not in self.stopping:
                    self.record.crashes += 1
                    crashed.append(child)
        await self._report(live)
        if len(ordered) == len(self.ids) and all(t.status in FINISHED for t in ordered):
            return Outcome("done", f"all {len(ordered)} tasks done")
        if self.record.crashes > self.max_crashes:
            return await self._failed(
                await self._all(),
                f"workers crashed {self.record.crashes} times (the limit is {self.max_crashes}): giving up",
            )
        held: list[str] = []
        working: set[str] = set()
        queued: dict[str, list[TaskRecord]] = {}
        """worker id -> the ready tasks reserved for it (handed out, or queued behind its current one)."""
        handable: list[TaskRecord] = []
        for task in ordered:
            if task.status is TaskStatus.ready and task.id not in self.became_ready:
                self.became_ready[task.id] = now()
            holder = task.assignee_id if task.assignee_id in live else None
            if holder is not None and task.status in (TaskStatus.in_progress, TaskStatus.blocked):
                working.add(holder)
                held += task.files
            elif holder is not None and task.status is TaskStatus.ready and holder != self.me.id:
                queued.setdefault(holder, []).append(task)
                held += task.files
            elif task.status is TaskStatus.ready:
                handable.append(task)
            elif task.status is TaskStatus.in_progress:
                held += task.files  # its worker ended after the tasks were read: the next tick sees it released
        active = any(
            t.status in (TaskStatus.ready, TaskStatus.in_progress, TaskStatus.pending)
            or (t.status is TaskStatus.blocked and not t.blocked_on_deps and t.assignee_id in live)
            for t in ordered
        )
        if not active and len(ordered) == len(self.ids):
            return await self._failed(ordered, "no task can run any more")
        # A worker being stopped holds its slot until it has ended: --workers bounds the processes running,
        # and spawning past it could hit MAESTRO_MAX_WORKERS, which would end the run.
        count = len(live)
        for child in crashed:
            held_now = self._held_by(child, ordered)
            if held_now is not None:
                self.to_respawn[child.id] = held_now
        for child_id, task_id in list(self.to_respawn.items()):
            last = tasks.get(task_id)
            if last is not None and last.status is TaskStatus.in_progress and last.assignee_id == child_id:
                continue  # read before its worker's end (which releases it): the next tick sees it ready
            del self.to_respawn[child_id]
            # Back with its conversation, it takes its task again unless another worker was quicker
            # (a released task is anyone's); either way it replaces itself rather than a new worker.
            if count < self.record.workers and await self._respawn(child_id):
                return None  # look again with it live
        self.holding = {t.assignee_id: t.id for t in ordered if t.status is TaskStatus.in_progress and t.assignee_id}
        awaiting = set(self.to_respawn.values())
        handable = [t for t in handable if t.id not in awaiting]
        if not self.record.open_pool:
            handable = [await self._keep(t) for t in handable]
        for holder, reserved in queued.items():
            for task in reserved:
                if holder not in working and (task.id, holder) not in self.told:
                    # Queued while its worker was finishing: it may have looked for work before the
                    # queueing committed, and be waiting for mail now.
                    await self._tell(task, live[holder])
        free = [s for s in live.values() if s.id not in working and s.id not in queued and s.id not in self.stopping]
        for task in sorted(handable, key=lambda t: (-t.priority, t.wave)):
            if task.files and any_overlap(task.files, held):
                continue  # waits for the task holding its files
            wanted = self.profile(task.id)
            worker = next((w for w in free if self.profiles.get(w.id) == wanted), None)
            if worker is not None:
                if await self._hand(task, worker):
                    free.remove(worker)
                    held += task.files
                continue
            if count < self.record.workers:
                if await self._spawn(task, wanted):
                    count += 1
                    held += task.files
                continue
            if self.record.open_pool:
                continue  # the next worker to finish claims it itself
            # Queued behind a busy worker's current task: it takes it the moment it finishes, with no
            # round trip through this scheduler (a free worker steals it first, below).
            behind = next(
                (
                    w
                    for w in working
                    if len(queued.get(w, [])) < QUEUE_DEPTH
                    and w not in self.stopping
                    and self.profiles.get(w) == wanted
                ),
                None,
            )
            if behind is not None:
                if await self._reserve(task, behind):
                    queued.setdefault(behind, []).append(task)
                    held += task.files
                continue
            other = next((w for w in free if self.profiles.get(w.id) != wanted), None)
            if other is not None:
                # Every slot is taken and the free worker is of the wrong kind: make room for one that fits.
                free.remove(other)
                self.stopping.add(other.id)
                self.workers.spawner.task_group.start_soon(self._stop, other.id, "its kind of task is done")
        for worker in free:
            kind = self.profiles.get(worker.id)
            victim = next(
                (w for w, ts in queued.items() if w in working and ts and self.profile(ts[-1].id) == kind), None
            )
            if victim is not None and await self._hand(queued[victim][-1], worker, expect_holder=victim):
                queued[victim].pop()
        return None

    def _held_by(self, child: SessionRecord, ordered: Sequence[TaskRecord]) -> str | None:
        """The task a crashed worker had, or None. It may have claimed one after the last look and died
        at once: then the tasks read show it still in progress under it (read before the end) or released
        by that end (read after), so the last look's sample is only the fallback."""
        for task in ordered:
            if task.status is TaskStatus.in_progress and task.assignee_id == child.id:
                return task.id
            released_by_its_end = task.released_from == child.id and task.updated_at >= (child.ended_at or 0)
            if released_by_its_end and task.status is TaskStatus.ready and task.assignee_id is None:
                return task.id
        return self.holding.get(child.id)

    async def _report(self, live: dict[str, SessionRecord]) -> None:
        if self.on_progress is None or now() - self.reported_at < REPORT_EVERY_S:
            return  # a display needs a few frames a second, not one per change of a 1,000-task plan
        self.reported_at = now()
        ordered = await self._all()
        doing = {t.assignee_id: t for t in ordered if t.status is TaskStatus.in_progress}
        workers = await self.store.list_sessions(parent_id=self.me.id)
        stats = await self.store.session_stats([w.id for w in workers]) if workers else {}
        total = sum((st.usage for st in stats.values()), Usage())
        rows = []
        for session in live.values():
            task = doing.get(session.id)
            st = stats.get(session.id)
            action = (st.doing if st and st.doing else None) or (
                f"{task.key or task.id}: {task.title}" if task else "waiting for a task"
            )
            if task and st and st.doing:
                action = f"{task.key or task.id}: {st.doing}"
            rows.append((session.name, session.status.value, action, money(st.usage) if st else "-"))
        mine = {w.id: w.name for w in workers}
        waiting = [
            f"{a.id} {mine[a.session_id]}: {a.tool} {a.input[:60]}"
            for a in await self.store.list_approvals(status=ApprovalStatus.pending)
            if a.session_id in mine
        ]
        self.on_progress(
            Progress(
                total=len(ordered),
                done=sum(1 for t in ordered if t.status is TaskStatus.done),
                failed=[t.key or t.id for t in ordered if t.status in BAD],
                workers=rows,
                crashes=self.record.crashes,
                spend=money(total),
                approvals=waiting,
            )
        )

    async def _reserve(self, task: TaskRecord, worker_id: str, expect_holder: str | None = None) -> bool:
        task = await self.svc.tasks.fill_state(task)
        holder = expect_holder if expect_holder is not None else task.assignee_id
        try:
            await self.store.update_task(
                task.id, expect=TaskStatus.ready, assignee_id=worker_id, expect_assignee=holder
            )
        except (Conflict, NotFound):
            # It moved meanwhile (its worker took it, a crash released it, another worker has it), or
            # the worker has just ended: next tick.
            return False
        return True

    async def _keep(self, task: TaskRecord) -> TaskRecord:
        """A ready task of a mixed run back under this scheduler, which hands it to a worker of its kind:
        a crash released it to the pool, where any worker's claim would take it, of whatever kind."""
        if task.assignee_id is not None:
            return task
        try:
            await self.store.update_task(task.id, expect=TaskStatus.ready, assignee_id=self.me.id, expect_assignee=None)
        except (Conflict, NotFound):
            return task  # claimed meanwhile: the hand-out below fails on it and the next tick sees it
        return task.model_copy(update={"assignee_id": self.me.id})

    async def _hand(self, task: TaskRecord, worker: SessionRecord, expect_holder: str | None = None) -> bool:
        if not await self._reserve(task, worker.id, expect_holder):
            return False
        self.handed[task.id] = now()
        await self._tell(task, worker)
        return True

    async def _tell(self, task: TaskRecord, worker: SessionRecord) -> None:
        self.told.add((task.id, worker.id))
        await self.svc.mail.send_event(
            self.me,
            [worker],
            f"your next task: {task.key or task.id}",
            f"Task {task.id} ({task.title}) is yours: take it with task_ready(claim=true), do it, and report"
            " complete (or failed) with report_progress. Then wait with mail_wait for the next one.",
            priority=Priority.normal,
            task_id=task.id,
        )

    async def _spawn(self, task: TaskRecord, profile: Profile) -> bool:
        task = await self.svc.tasks.fill_state(task)
        if task.assignee_id not in (None, self.me.id):
            return False  # a worker took or was given it meanwhile
        try:
            spawned = await self.workers.spawn(
                self.me,
                agent=profile.agent,
                directive=(
                    f"You are a worker of maestro run {self.record.id} ({self.record.plan}). Take the task you are"
                    " given with task_ready(claim=true), do it, report complete or failed with report_progress,"
                    " then wait with mail_wait: the scheduler mails you each next task. Stop when told."
                ),
                task_ids=[task.id],
                model=profile.model,
                budget_usd=profile.budget_usd,
            )
        except Conflict as exc:
            if str(exc).startswith(f"Task {task.id} is"):
                return False  # it moved meanwhile (claimed, given to another worker): next tick
            raise
        except NotFound:
            return False
        self.profiles[spawned.session.id] = profile
        self.handed[task.id] = now()
        return True

    async def _respawn(self, child_id: str) -> bool:
        """Bring a crashed worker back as the same session, with its conversation where its CLI resumes
        one; it takes back the task it held. False when it cannot be (then a new worker takes the task)."""
        try:
            await self.workers.respawn(
                self.me, child_id, "You crashed in the middle of your task: carry on where you stopped."
            )
        except MaestroError:
            return False
        self.respawned += 1
        return True

    async def _stop(self, session_id: str, reason: str) -> None:
        # It ended by itself meanwhile, or cannot be stopped: its end is reported either way.
        with contextlib.suppress(MaestroError):
            await self.workers.stop(self.me, session_id, reason, STOP_GRACE_S)

    async def stop_all(self, reason: str) -> None:
        live = [s for s in await self.store.list_sessions(parent_id=self.me.id, live=True)]
        self.stopping.update(s.id for s in live)
        async with anyio.create_task_group() as tg:
            for session in live:
                tg.start_soon(self._stop, session.id, reason)

    async def _failed(self, ordered: Sequence[TaskRecord], why: str) -> Outcome:
        failed = []
        for task in ordered:
            if task.status in BAD or (task.status is TaskStatus.blocked and task.blocked_on_deps):
                last = await self.store.reports(task_id=task.id, limit=1)
                said = last[0].summary if last else (task.result or task.blocked_reason or "")
                failed.append((task, said))
        return Outcome("failed", why, failed)


def describe(outcome: Outcome) -> str:
    lines = [outcome.summary]
    for task, said in outcome.failed:
        status = "blocked (a dependency failed)" if task.status is TaskStatus.blocked else task.status.value
        lines.append(f"  {task.key or task.id} ({task.title}) {status}: {said}".rstrip(": "))
    return "\n".join(lines)
