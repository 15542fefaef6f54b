"""Tasks as a DAG: creation with cycle checks, readiness, atomic claims, enforced transitions."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from maestro_mcp.errors import Conflict, Forbidden, InvalidArgument, NotFound
from maestro_mcp.files import normalize
from maestro_mcp.ids import new_id
from maestro_mcp.models import (
    NewTask,
    Priority,
    Role,
    SessionRecord,
    SessionStatus,
    Task,
    TaskChange,
    TaskRecord,
    TaskSpec,
    TaskStatus,
    now,
)
from maestro_mcp.service.mail import MailService, coordinator_of
from maestro_mcp.service.state import MAX_VALUE_BYTES, StateService, task_result_key
from maestro_mcp.store import Store
from maestro_mcp.templates import state_keys, state_text, substitute

from . import limits

log = logging.getLogger(__name__)

MAX_TASKS_PER_CALL = 10_000
KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")

# Which status changes task_update allows; `cancelled` is the coordinator's alone.
TRANSITIONS: dict[TaskStatus, set[TaskStatus]] = {
    TaskStatus.pending: {TaskStatus.blocked, TaskStatus.cancelled},
    # ready -> in_progress only through task_ready(claim=true), which checks races and file ownership.
    TaskStatus.ready: {TaskStatus.blocked, TaskStatus.cancelled},
    TaskStatus.in_progress: {
        TaskStatus.done,
        TaskStatus.failed,
        TaskStatus.blocked,
        TaskStatus.ready,
        TaskStatus.cancelled,
    },
    # blocked -> in_progress: its assignee takes it up again (only a task someone holds, see `update`).
    TaskStatus.blocked: {TaskStatus.in_progress, TaskStatus.ready, TaskStatus.failed, TaskStatus.cancelled},
    TaskStatus.failed: {TaskStatus.ready, TaskStatus.cancelled},
    TaskStatus.done: set(),
    TaskStatus.cancelled: set(),
}
COORDINATOR_ONLY = {TaskStatus.cancelled}


def _text(value: str | list[str]) -> str:
    if isinstance(value, list):
        return "\n".join(f"- {item}" for item in value if item.strip())
    return value


def find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a path [a, b, ..., a], or None. `edges[x]` are what x depends on."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in edges:
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            deps = edges.get(node, [])
            if index < len(deps):
                stack.append((node, index + 1))
                dep = deps[index]
                if state.get(dep) == 1:
                    return [*path[path.index(dep) :], dep]
                if not state.get(dep):
                    stack.append((dep, 0))
            else:
                state[node] = 2
                path.pop()
    return None


@dataclass
class Plan:
    tasks: list[NewTask]
    """In dependency order: every task after the tasks it depends on."""
    ids: list[str]
    """The same tasks' ids in the caller's order."""


@dataclass
class Ready:
    tasks: list[Task]
    claimed: Task | None
    skipped: list[str] = field(default_factory=list)


class TaskService:
    def __init__(self, store: Store, mail: MailService, state: StateService | None = None) -> None:
        self.store = store
        self.mail = mail
        self.state = state

    # -- views ----------------------------------------------------------------
    async def views(self, records: Sequence[TaskRecord], known: SessionRecord | None = None) -> list[Task]:
        """Tasks as tools show them; `known` is a session whose name need not be looked up (the caller)."""
        names: dict[str, str] = {known.id: known.name} if known else {}
        for assignee in {r.assignee_id for r in records if r.assignee_id and r.assignee_id not in names}:
            session = await self.store.get_session(assignee)
            names[assignee] = session.name if session else assignee
        return [
            Task(
                id=r.id,
                key=r.key,
                title=r.title,
                description=r.description,
                acceptance=r.acceptance,
                status=r.status,
                wave=r.wave,
                depends_on=r.depends_on,
                files=r.files,
                assignee=names.get(r.assignee_id) if r.assignee_id else None,
                result=r.result,
                artifacts=r.artifacts,
                parent_id=r.parent_id,
                priority=r.priority,
                blocked_reason=r.blocked_reason,
                attempts=r.attempts,
            )
            for r in records
        ]

    async def view(self, record: TaskRecord) -> Task:
        return (await self.views([record]))[0]

    async def get(self, task_id: str) -> TaskRecord:
        task = await self.store.get_task(task_id)
        if task is None:
            raise NotFound(f"No task {task_id!r}.", "Call task_list to see task ids.")
        return task

    async def list_tasks(
        self, status: TaskStatus | None = None, assignee: str | None = None, parent_id: str | None = None
    ) -> list[TaskRecord]:
        assignee_id = None
        if assignee is not None:
            session = await self.store.get_session(assignee)
            if session is None:
                raise NotFound(f"No session {assignee!r}.", "Call list_sessions for names.")
            assignee_id = session.id
        return await self.store.list_tasks(status=status, assignee_id=assignee_id, parent_id=parent_id)

    # -- creation -------------------------------------------------------------
    async def plan(self, caller: SessionRecord | None, specs: Sequence[TaskSpec]) -> Plan:
        """Validate a batch and resolve it to tasks in dependency order, without storing anything."""
        if not specs:
            raise InvalidArgument("`tasks` is empty.", "Pass at least one task with a title.")
        if len(specs) > MAX_TASKS_PER_CALL:
            raise InvalidArgument(
                f"`tasks` lists {len(specs)} tasks; the limit is {MAX_TASKS_PER_CALL} per call.",
                "Create the plan in several calls: depends_on may name the ids an earlier call returned.",
            )
        keys: dict[str, int] = {}
        for i, spec in enumerate(specs):
            label = spec.key or f"#{i + 1}"
            if not spec.title.strip():
                raise InvalidArgument(f"Task {label} has an empty title.", "Give every task a short title.")
            limits.text(f"tasks[{i}].title", spec.title, limits.MAX_TITLE, chars=True)
            limits.text(f"tasks[{i}].description", spec.description)
            limits.text(f"tasks[{i}].acceptance", _text(spec.acceptance))
            limits.items(f"tasks[{i}].files", spec.files)
            limits.integer(f"tasks[{i}].priority", spec.priority, -limits.MAX_PRIORITY, limits.MAX_PRIORITY)
            if spec.parent_id is not None and spec.parent_id == spec.key:
                raise InvalidArgument(f"Task {label} is its own parent.", "Name another task as parent_id.")
            if spec.key is not None:
                if not KEY_RE.match(spec.key):
                    raise InvalidArgument(
                        f"Task key {spec.key!r} is not valid.", "Use letters, digits, '.', '_', ':' or '-'."
                    )
                if spec.key in keys:
                    raise InvalidArgument(
                        f"Task key {spec.key!r} is used twice in this call.", "Give each task its own key."
                    )
                keys[spec.key] = i
        ids = [new_id("t") for _ in specs]
        index_of = {task_id: i for i, task_id in enumerate(ids)}
        by_key = {key: ids[i] for key, i in keys.items()}
        outside = {d for s in specs for d in s.depends_on if d not in by_key}
        outside |= {s.parent_id for s in specs if s.parent_id and s.parent_id not in by_key}
        existing = await self.store.get_tasks(sorted(outside)) if outside else {}
        label_of = {ids[i]: (specs[i].key or f"#{i + 1}") for i in range(len(specs))}

        edges: dict[str, list[str]] = {}
        for i, spec in enumerate(specs):
            deps: list[str] = []
            for dep in spec.depends_on:
                if dep in (spec.key, ids[i]):
                    raise InvalidArgument(f"Task {label_of[ids[i]]} depends on itself.", "Remove it from depends_on.")
                target = by_key.get(dep) or (dep if dep in existing else None)
                if target is None:
                    raise NotFound(
                        f"Task {label_of[ids[i]]} depends on {dep!r}, which is neither a key of this call nor"
                        " an existing task id.",
                        "Use keys defined in this call or ids from task_list.",
                    )
                if target not in deps:
                    deps.append(target)
            edges[ids[i]] = deps
        cycle = find_cycle(edges)
        if cycle is not None:
            path = " -> ".join(label_of.get(t, t) for t in cycle)
            raise InvalidArgument(f"These tasks depend on each other in a cycle: {path}.", "Break the cycle.")

        # A parent named by a key of this call is stored before its children (a foreign key needs it).
        parents = {ids[i]: by_key[sp.parent_id] for i, sp in enumerate(specs) if sp.parent_id in by_key}
        storing = {t: [*edges[t], *([parents[t]] if t in parents else [])] for t in ids}
        loop = find_cycle(storing)
        if loop is not None:
            path = " -> ".join(label_of.get(t, t) for t in loop)
            raise InvalidArgument(f"These tasks are each other's parents: {path}.", "Give the group one parent.")
        order = self._topological(ids, storing)
        wave: dict[str, int] = {t.id: t.wave for t in existing.values()}
        ts = now()
        planned: list[NewTask] = []
        for task_id in order:
            spec = specs[index_of[task_id]]
            wave[task_id] = 1 + max((wave[d] for d in edges[task_id]), default=-1)
            planned.append(
                NewTask(
                    id=task_id,
                    key=spec.key,
                    title=spec.title.strip(),
                    description=spec.description,
                    acceptance=_text(spec.acceptance),
                    priority=spec.priority,
                    wave=wave[task_id],
                    parent_id=await self._parent(spec, by_key, existing),
                    depends_on=edges[task_id],
                    files=sorted({normalize(f) for f in spec.files}),
                    assignee_id=await self._assignee(spec.assignee),
                    created_by=caller.id if caller else None,
                    status=TaskStatus.pending,
                    created_at=ts,
                )
            )
        return Plan(planned, ids)

    @staticmethod
    def _topological(ids: list[str], edges: dict[str, list[str]]) -> list[str]:
        placed: set[str] = set()
        order: list[str] = []
        in_batch = set(ids)

        def visit(root: str) -> None:
            stack = [(root, False)]
            while stack:
                node, expanded = stack.pop()
                if node in placed:
                    continue
                if expanded:
                    placed.add(node)
                    order.append(node)
                    continue
                stack.append((node, True))
                stack.extend((d, False) for d in edges[node] if d in in_batch and d not in placed)

        for task_id in ids:
            visit(task_id)
        return order

    async def _parent(self, spec: TaskSpec, by_key: dict[str, str], existing: dict[str, TaskRecord]) -> str | None:
        if spec.parent_id is None:
            return None
        if spec.parent_id in by_key:
            return by_key[spec.parent_id]
        if spec.parent_id in existing:
            return spec.parent_id
        raise NotFound(f"No parent task {spec.parent_id!r}.", "Use an id from task_list or a key of this call.")

    async def _assignee(self, assignee: str | None) -> str | None:
        if assignee is None:
            return None
        session = await self.store.get_session(assignee)
        if session is None:
            raise NotFound(f"No session {assignee!r} to assign to.", "Call list_sessions for names.")
        return session.id

    async def create(self, caller: SessionRecord | None, specs: Sequence[TaskSpec]) -> list[TaskRecord]:
        plan = await self.plan(caller, specs)
        created = {t.id: t for t in await self.store.create_tasks(plan.tasks)}
        # Answer in the caller's order, not the dependency order the store needed.
        return [created[task_id] for task_id in plan.ids]

    # -- claiming -------------------------------------------------------------
    async def ready(self, caller: SessionRecord, claim: bool, limit: int) -> Ready:
        if not 1 <= limit <= 500:
            raise InvalidArgument(f"limit={limit} is out of range.", "Use 1 to 500.")
        if not claim:
            return Ready(await self.views(await self.store.ready_tasks(caller.id, limit), caller), None)
        outcome = await self.store.claim_task(caller.id, limit)
        claimed = await self.fill_state(outcome.claimed, holder=caller.id) if outcome.claimed else None
        if claimed is not None:
            # `caller` is the record the server cached at start; a report since may have set the
            # session done or blocked, so look at the stored status, not the cached one.
            current = await self.store.get_session(caller.id)
            if current is not None and current.status is not SessionStatus.working:
                await self.store.set_session_status(caller.id, SessionStatus.working)
        view = (await self.views([claimed], caller))[0] if claimed else None
        return Ready(await self.views(outcome.ready, caller), view, outcome.skipped)

    # -- updates --------------------------------------------------------------
    async def update(
        self,
        caller: SessionRecord,
        task_id: str,
        *,
        status: TaskStatus | None = None,
        result: str | None = None,
        artifacts: Sequence[str] | None = None,
    ) -> TaskChange:
        task = await self.get(task_id)
        is_coordinator = caller.role in (Role.coordinator, Role.operator)
        if not is_coordinator and task.assignee_id != caller.id:
            holder = await self.store.get_session(task.assignee_id) if task.assignee_id else None
            raise Forbidden(
                f"Task {task.id} is not yours (assignee: {holder.name if holder else task.assignee_id or 'nobody'}).",
                "Only its assignee or a coordinator may change it; claim work with task_ready(claim=true).",
            )
        if result is not None:
            limits.text("result", result)
        if artifacts is not None:
            limits.items("artifacts", artifacts)
        if status is not None and status is not task.status:
            allowed = TRANSITIONS[task.status]
            if status not in allowed:
                options = ", ".join(sorted(s.value for s in allowed)) or "none: it is final"
                raise Conflict(
                    f"Task {task.id} cannot go from {task.status.value} to {status.value}.",
                    f"From {task.status.value} it can go to: {options}.",
                )
            if status is TaskStatus.in_progress and not await self._resumable(task):
                raise Conflict(
                    f"Task {task.id} is blocked and nobody holds it, or it still waits on a dependency:"
                    " it cannot be taken up again directly.",
                    "Set it to ready; a worker then claims it with task_ready(claim=true).",
                )
            if status in COORDINATOR_ONLY and not is_coordinator:
                raise Forbidden(f"Only a coordinator may set a task to {status.value}.", "Report blocked instead.")
            if status is TaskStatus.done and not (result or task.result or "").strip():
                raise InvalidArgument("A task can only be done with a result.", "Pass `result`: what you did.")
        change = await self.store.update_task(
            task.id,
            expect=task.status,
            status=status if status is not task.status else None,
            result=result,
            artifacts=artifacts,
            unassign=status is TaskStatus.ready and await self._release_on_ready(task),
            blocked_reason=result if status is TaskStatus.blocked else None,
        )
        if status is TaskStatus.done:
            await self.publish_result(caller, change.task)
        await self.announce(caller, change)
        return change

    async def fill_state(self, task: TaskRecord, holder: str | None = None) -> TaskRecord:
        """The task with each ``{{ state.KEY }}`` in its texts filled in, stored and returned; called as
        it is handed out, or by `holder` just after claiming it (so no worker ever sees a placeholder).

        A `task.<key>.result` of a task it depends on, however far back, is read from that task itself:
        the result is published as state just after its task is done, so a task readied by that very
        change can be claimed first, and state may still hold an earlier run's value under that key. Any
        other key is read from shared state. What is found nowhere reads "(unset)"."""
        texts = [task.title, task.description, task.acceptance]
        wanted = {key for text in texts for key in state_keys(text)}
        if not wanted:
            return task
        values: dict[str, str] = {}
        if any(key.startswith("task.") and key.endswith(".result") for key in wanted):
            values = {k: v for k, v in (await self._ancestor_results(task)).items() if k in wanted}
        for key in wanted - values.keys():
            try:
                entry = await self.state.get(key) if self.state is not None else None
            except InvalidArgument:
                continue  # no key can be set under that name (a claim must not fail on it): "(unset)"
            if entry is not None:
                values[key] = state_text(entry.value)
        filled = [
            substitute(t, lambda ns, key: (values.get(key) or "(unset)") if ns == "state" else None)[0] for t in texts
        ]
        await self.store.set_task_text(
            task.id, title=filled[0], description=filled[1], acceptance=filled[2], holder=holder
        )
        return task.model_copy(update={"title": filled[0], "description": filled[1], "acceptance": filled[2]})

    async def _ancestor_results(self, task: TaskRecord) -> dict[str, str]:
        """`task.<key>.result` of every task `task` depends on, directly or not, that has a result."""
        results: dict[str, str] = {}
        seen: set[str] = set()
        frontier = list(task.depends_on)
        while frontier:
            seen.update(frontier)
            found = await self.store.get_tasks(frontier)
            for dep in found.values():
                if dep.key and dep.result:
                    results.setdefault(task_result_key(dep.key), dep.result)
            frontier = [d for dep in found.values() for d in dep.depends_on if d not in seen]
        return results

    async def publish_result(self, caller: SessionRecord, task: TaskRecord) -> None:
        """A done task's result, as shared state under `task.<key>.result`, for whoever needs it later."""
        if self.state is None or task.key is None or task.result is None:
            return
        value = json.dumps(task.result)
        if len(value.encode()) > MAX_VALUE_BYTES:
            # The task is done either way; its result stays readable with task_get.
            log.info("task %s: result too long to publish as state (%d bytes)", task.id, len(value.encode()))
            return
        await self.state.set(caller, task_result_key(task.key), value)

    async def _resumable(self, task: TaskRecord) -> bool:
        """A blocked task its assignee may take up again: held by someone, every dependency done."""
        if task.assignee_id is None or task.blocked_on_deps:
            return False
        deps = await self.store.get_tasks(task.depends_on) if task.depends_on else {}
        return all(d.status is TaskStatus.done for d in deps.values())

    async def _release_on_ready(self, task: TaskRecord) -> bool:
        """Whether a task going back to ready should lose its assignee.

        A task given back (from in_progress) or retried after a failure is a fresh attempt for
        anyone; kept for its worker only when it comes back from `blocked` and that worker's
        session is still live (it takes the task up again), so a task is never reserved for a
        session that can no longer claim it.
        """
        if task.assignee_id is None:
            return False
        if task.status is not TaskStatus.blocked:
            return True
        assignee = await self.store.get_session(task.assignee_id)
        return assignee is None or not assignee.live

    async def announce(self, caller: SessionRecord, change: TaskChange) -> None:
        """Tell the coordinator, in one event mail each, which tasks became ready or blocked."""
        if not change.now_ready and not change.now_blocked:
            return
        recipient = caller if caller.role is Role.coordinator else await coordinator_of(self.store, caller)
        if recipient is None or recipient.id == caller.id:
            creator = await self.store.get_session(change.task.created_by) if change.task.created_by else None
            recipient = creator if creator and creator.id != caller.id else None
        if recipient is None:
            return
        if change.now_ready:
            lines = "\n".join(f"- {t.id} {t.title}" for t in change.now_ready)
            await self.mail.send_event(
                caller,
                [recipient],
                f"{len(change.now_ready)} task(s) ready",
                f"{change.task.id} ({change.task.title}) is {change.task.status.value}; now ready:\n{lines}",
                priority=Priority.normal,
                task_id=change.task.id,
            )
        if change.now_blocked:
            lines = "\n".join(f"- {t.id} {t.title}: {t.blocked_reason}" for t in change.now_blocked)
            await self.mail.send_event(
                caller,
                [recipient],
                f"{len(change.now_blocked)} task(s) blocked",
                f"{change.task.id} ({change.task.title}) is {change.task.status.value}; now blocked:\n{lines}",
                priority=Priority.high,
                task_id=change.task.id,
            )
