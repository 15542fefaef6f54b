"""Tasks, dependencies and reports: the task-graph rules, written once as steps.

Waiting tasks keep a materialised status (pending / ready / blocked on a
dependency), re-derived in the transaction that changes a dependency, so that
`task_ready` is one index range even on a large DAG. Claims are serialised
(`Lock("claim")`: SQLite's write lock, a transaction advisory lock on
PostgreSQL) so that the file-ownership check of each claimer sees every claim
committed before it, and the conditional UPDATE (``WHERE status = 'ready'``)
hands each task to exactly one claimer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from maestro_mcp.errors import Conflict, NotFound
from maestro_mcp.models import (
    ClaimOutcome,
    NewTask,
    ReportRecord,
    SessionStatus,
    TaskChange,
    TaskRecord,
    TaskStatus,
    now,
)

from . import rows
from .sql import Statement, as_list, statement, where
from .steps import Lock, Step, Wake

TASKS = ("tasks",)
# Scan this many ready tasks for one the claimer may take (file ownership can pass over some).
CLAIM_SCAN = 200
BAD = (TaskStatus.failed.value, TaskStatus.cancelled.value)

# A task with its dependencies (sorted), as `rows.task` reads it.
TASKS_FROM = "SELECT t.*, (SELECT {AGG d.depends_on} FROM task_deps d WHERE d.task_id = t.id) AS deps FROM tasks t"

INSERT = Statement(
    "INSERT INTO tasks (id, key, title, description, acceptance, status, priority, wave, parent_id, files,"
    " assignee_id, created_by, created_at, updated_at) VALUES (:id, :key, :title, :description, :acceptance,"
    " :status, :priority, :wave, :parent_id, :files, :assignee_id, :created_by, :created_at, :created_at)"
    " ON CONFLICT (id) DO NOTHING RETURNING seq"
)
INSERT_DEPS = Statement(
    "INSERT INTO task_deps (task_id, depends_on) SELECT DISTINCT CAST(:task_id AS TEXT), value FROM {EACH :deps}"
)
GET = Statement(f"{TASKS_FROM} WHERE t.id = :id")
BY_IDS = Statement(f"{TASKS_FROM} WHERE t.id {{IN :ids}} ORDER BY t.seq")
READY = Statement(
    f"{TASKS_FROM} WHERE t.status = 'ready' AND (t.assignee_id IS NULL OR t.assignee_id = :session_id)"
    " ORDER BY t.priority DESC, t.seq LIMIT :limit"
)
DEPENDENCIES = Statement(
    "SELECT t.id, t.title, t.status FROM task_deps d JOIN tasks t ON t.id = d.depends_on WHERE d.task_id = :id"
    " ORDER BY t.seq"
)
DEPENDENTS = Statement(
    "SELECT t.id, t.status FROM task_deps d JOIN tasks t ON t.id = d.task_id WHERE d.depends_on = :id"
    " AND (t.status IN ('pending', 'ready') OR (t.status = 'blocked' AND t.blocked_on_deps = TRUE)) ORDER BY t.seq"
)
# Two dependencies of one task done at once, in two PostgreSQL transactions, would each read the other
# as still running (a statement sees only what is committed) and leave their dependent pending for good:
# each locks the dependent first, so the second waits for the first's commit and then sees both done.
LOCK_WAITING = Statement("SELECT status, blocked_on_deps FROM tasks WHERE id = :id {FOR_UPDATE}")
SET_DERIVED = Statement(
    "UPDATE tasks SET status = :status, blocked_reason = :reason, blocked_on_deps = :blocked,"
    " updated_at = COALESCE(:ts, updated_at) WHERE id = :id"
)
# Narrow columns: this runs holding the lock every claimer of every process waits for.
CANDIDATES = Statement(
    "SELECT id, title, files FROM tasks WHERE status = 'ready' AND (assignee_id IS NULL OR assignee_id = :session_id)"
    " ORDER BY priority DESC, seq LIMIT :limit OFFSET :offset"
)
BUSY = Statement(
    "SELECT t.id, t.files, s.name FROM tasks t LEFT JOIN sessions s ON s.id = t.assignee_id"
    " WHERE t.status = 'in_progress' AND t.files != :none AND t.assignee_id {DISTINCT_FROM} :session_id"
)
# The session a task is given to, locked until the transaction commits: ending it (which releases its
# tasks) waits, so no task is handed to a session whose end has already let go of its work.
# In the same statement, the name of its coordinator if that has ended: this runs under the claim lock.
TAKER = Statement(
    "SELECT s.name, s.status, s.ended_at, (SELECT p.name FROM sessions p WHERE p.id = s.parent_id"
    " AND p.role = 'coordinator' AND p.ended_at IS NOT NULL) AS ended_coordinator"
    " FROM sessions s WHERE s.id = :id {FOR_UPDATE}"
)
CLAIM = Statement(
    "UPDATE tasks SET status = 'in_progress', assignee_id = :session_id, attempts = attempts + 1, updated_at = :ts"
    " WHERE id = :id AND status = 'ready'"
)
HELD = Statement(
    "SELECT id, attempts FROM tasks WHERE assignee_id = :session_id AND status = 'in_progress' ORDER BY seq"
    " {FOR_UPDATE}"
)
GIVE_UP = Statement("UPDATE tasks SET status = 'failed', result = :result, updated_at = :ts WHERE id = :id")

# A respawned worker takes back what it held, if nobody has claimed it since.
TAKE_BACK = Statement(
    "UPDATE tasks SET assignee_id = :session_id, released_from = NULL, updated_at = :ts"
    " WHERE released_from = :session_id AND status IN ('pending', 'ready') AND assignee_id IS NULL RETURNING id"
)
# Only before anyone holds it: a worker never sees the text of its task change under it.
SET_TEXT = Statement(
    "UPDATE tasks SET title = :title, description = :description, acceptance = :acceptance, updated_at = :ts"
    " WHERE id = :id AND (status IN ('pending', 'ready') OR (status = 'in_progress' AND assignee_id = :holder))"
)
# Reserved for a session (spawn_worker's task_ids) but never started: nobody else could claim them.
UNRESERVE = Statement(
    "UPDATE tasks SET released_from = assignee_id, assignee_id = NULL, updated_at = :ts"
    " WHERE assignee_id = :session_id AND status IN ('pending', 'ready', 'blocked') RETURNING id"
)
RELEASE = Statement(
    "UPDATE tasks SET status = 'ready', assignee_id = NULL, released_from = :session_id, updated_at = :ts"
    " WHERE id = :id"
)
INSERT_REPORT = Statement(
    "INSERT INTO reports (id, session_id, task_id, kind, summary, artifacts, percent, created_at)"
    " VALUES (:id, :session_id, :task_id, :kind, :summary, :artifacts, :percent, :created_at)"
    " ON CONFLICT (id) DO NOTHING"
)
# A stop asked of a live session stays its status until it ends (its spawner reports the exit as a stop,
# not a crash): a claim, an approval or a report made meanwhile does not overwrite it.
STICKY_STATUS = "status = CASE WHEN status = 'stopped' THEN status ELSE :status END"
REPORTER_STATUS = Statement(
    f"UPDATE sessions SET {STICKY_STATUS}, last_seen_at = :ts WHERE id = :id AND ended_at IS NULL"
)


# -- reading ----------------------------------------------------------------------------------------------
def get(task_id: str) -> Step[TaskRecord | None]:
    row = yield GET.one(id=task_id)
    return rows.task(row) if row else None


def by_ids(ids: Sequence[str]) -> Step[list[TaskRecord]]:
    if not ids:
        return []
    return [rows.task(r) for r in (yield BY_IDS.all(ids=list(ids)))]


def get_many(task_ids: Sequence[str]) -> Step[dict[str, TaskRecord]]:
    return {t.id: t for t in (yield from by_ids(list(dict.fromkeys(task_ids))))}


def listed(status: TaskStatus | None, assignee_id: str | None, parent_id: str | None) -> Step[list[TaskRecord]]:
    params = {"status": status, "assignee_id": assignee_id, "parent_id": parent_id}
    params = {k: v for k, v in params.items() if v is not None}
    query = statement(f"{TASKS_FROM}{where([f't.{k} = :{k}' for k in params])} ORDER BY t.wave, t.priority DESC, t.seq")
    return [rows.task(r) for r in (yield query.all(**params))]


def ready(session_id: str, limit: int) -> Step[list[TaskRecord]]:
    return [rows.task(r) for r in (yield READY.all(session_id=session_id, limit=limit))]


# -- the rules --------------------------------------------------------------------------------------------
def derived(task_id: str) -> Step[tuple[TaskStatus, str | None]]:
    """What a waiting task's status should be, from its dependencies' statuses."""
    deps = yield DEPENDENCIES.all(id=task_id)
    bad = [r for r in deps if r["status"] in BAD]
    if bad:
        names = ", ".join(f"{r['id']} ({r['title']}) is {r['status']}" for r in bad)
        return TaskStatus.blocked, f"dependency {names}: retry, cancel or rewire it"
    if all(r["status"] == TaskStatus.done.value for r in deps):
        return TaskStatus.ready, None
    return TaskStatus.pending, None


def rederive(task_id: str, ts: float | None) -> Step[TaskStatus]:
    status, reason = yield from derived(task_id)
    yield SET_DERIVED.run(id=task_id, status=status, reason=reason, blocked=status is TaskStatus.blocked, ts=ts)
    return status


def refresh_dependents(task_id: str, ts: float) -> Step[tuple[list[str], list[str]]]:
    """Re-derive the waiting dependents of `task_id`; returns (ids now ready, ids now blocked)."""
    now_ready: list[str] = []
    now_blocked: list[str] = []
    for row in (yield DEPENDENTS.all(id=task_id)):
        current = yield LOCK_WAITING.one(id=row["id"])  # read again under the lock: it may have moved
        waiting = current is not None and (
            current["status"] in (TaskStatus.pending.value, TaskStatus.ready.value)
            or (current["status"] == TaskStatus.blocked.value and current["blocked_on_deps"])
        )
        if not waiting:
            continue  # claimed, or blocked by its worker, meanwhile: not derived from its dependencies now
        status, reason = yield from derived(row["id"])
        if status.value == current["status"]:
            continue
        yield SET_DERIVED.run(id=row["id"], status=status, reason=reason, blocked=status is TaskStatus.blocked, ts=ts)
        if status is TaskStatus.ready:
            now_ready.append(row["id"])
        elif status is TaskStatus.blocked:
            now_blocked.append(row["id"])
    return now_ready, now_blocked


def create(tasks: Sequence[NewTask]) -> Step[list[TaskRecord]]:
    """The service orders the batch so that dependencies come first."""
    for task in tasks:
        fields = task.model_dump(exclude={"depends_on", "blocked_reason"})
        seq = yield INSERT.value(**(fields | {"status": TaskStatus.pending}))
        if seq is None:
            continue  # a retry after a lost COMMIT: this task is stored already
        if task.depends_on:
            yield INSERT_DEPS.run(task_id=task.id, deps=list(task.depends_on))
        yield from rederive(task.id, None)
    yield Wake(TASKS)
    return (yield from by_ids([t.id for t in tasks]))


def live_taker(session_id: str) -> Step[str | None]:
    """Refuse to hand a task to a session that has ended (its process may not know yet). Why it takes
    no new task though live, or None: it is being stopped, or its coordinator has ended (and told it to
    end). A task it took on its way out would be torn from it by its exit, and counted a failed attempt."""
    row = yield TAKER.one(id=session_id)
    if row is None:
        return None
    if row["ended_at"] is not None:
        raise Conflict(
            f"Session {row['name']} has {row['status']}: an ended session takes no tasks.",
            "Its coordinator can respawn it (respawn_worker) or give the task to another worker.",
        )
    if row["status"] == SessionStatus.stopped.value:
        return "You are being stopped (see your mail): you take no new tasks. Finish up and exit."
    if (coordinator := row["ended_coordinator"]) is not None:
        return f"Your coordinator {coordinator} has ended: you take no new tasks. Report what you have, then end."
    return None


def claim(session_id: str, limit: int) -> Step[ClaimOutcome]:
    # Read little while holding the lock: a first page of limit + 1 candidates is nearly always enough,
    # and the files of work in progress are read only when a candidate declares files.
    yield Lock("claim")
    if (refused := (yield from live_taker(session_id))) is not None:
        return ClaimOutcome(claimed=None, ready=[], skipped=[refused])
    busy: list[tuple[str, list[str], str | None]] | None = None
    skipped: list[str] = []
    seen: list[str] = []
    claimed_id: str | None = None
    offset, page = 0, limit + 1
    while claimed_id is None and offset < CLAIM_SCAN:
        candidates = yield CANDIDATES.all(session_id=session_id, limit=page, offset=offset)
        for row in candidates:
            seen.append(row["id"])
            if claimed_id is not None:
                continue
            files = as_list(row["files"])
            if files:
                if busy is None:
                    found = yield BUSY.all(session_id=session_id, none=[])
                    busy = [(r["id"], as_list(r["files"]), r["name"]) for r in found]
                clash = rows.file_clash(row["id"], row["title"], files, busy)
                if clash is not None:
                    skipped.append(clash)
                    continue
            if (yield CLAIM.count(session_id=session_id, id=row["id"], ts=now())) == 1:
                claimed_id = row["id"]
        if len(candidates) < page:
            break
        offset += page
        page = CLAIM_SCAN - offset
    claimed = (yield from get(claimed_id)) if claimed_id else None
    rest = [task_id for task_id in seen if task_id != claimed_id][:limit]
    records = {t.id: t for t in (yield from by_ids(rest))}
    if claimed is not None:
        yield Wake(TASKS)
    # In the order claimers see them (priority, then age), not the order of the lookup.
    return ClaimOutcome(claimed=claimed, ready=[records[i] for i in rest], skipped=skipped)


def update(
    task_id: str,
    expect: TaskStatus,
    status: TaskStatus | None,
    result: str | None,
    artifacts: Sequence[str] | None,
    assignee_id: str | None,
    unassign: bool,
    blocked_reason: str | None,
    expect_assignee: str | None = None,
) -> Step[TaskChange]:
    ts = now()
    sets = ["updated_at = :ts"]
    params: dict[str, Any] = {"ts": ts, "id": task_id, "expect": expect}
    if status is not None:
        sets += ["status = :status", "blocked_reason = :blocked_reason", "blocked_on_deps = FALSE"]
        params |= {"status": status, "blocked_reason": blocked_reason if status is TaskStatus.blocked else None}
    if result is not None:
        sets.append("result = :result")
        params["result"] = result
    if artifacts is not None:
        sets.append("artifacts = :artifacts")
        params["artifacts"] = list(artifacts)
    guard = "id = :id AND status = :expect"
    if assignee_id is not None and (refused := (yield from live_taker(assignee_id))) is not None:
        raise Conflict(f"That session takes no new tasks. It was told: {refused}", "Give the task to another worker.")
    if assignee_id is not None:
        sets.append("assignee_id = :assignee_id")
        # Still unassigned, or held by whom the caller saw holding it: two spawns never both take it.
        guard += " AND (assignee_id IS NULL OR assignee_id = :assignee_id OR assignee_id = :expect_assignee)"
        params |= {"assignee_id": assignee_id, "expect_assignee": expect_assignee}
    elif unassign:
        # Remembered, so that the same worker respawned takes it back if nobody claimed it meanwhile.
        sets.append("released_from = assignee_id, assignee_id = NULL")
    changed = yield statement(f"UPDATE tasks SET {', '.join(sets)} WHERE {guard}").count(**params)
    if changed != 1:
        current = yield from get(task_id)
        if current is None:
            raise NotFound(f"No task {task_id!r}.", "Call task_list to see task ids.")
        if current.status is expect:
            holder = (yield TAKER.one(id=current.assignee_id)) if current.assignee_id else None
            raise Conflict(
                f"Task {task_id} is reserved for {holder['name'] if holder else current.assignee_id} now:"
                " it changed meanwhile.",
                "Call task_get and decide again.",
            )
        raise Conflict(
            f"Task {task_id} is {current.status.value} now, not {expect.value}: it changed meanwhile.",
            "Call task_get and decide again.",
        )
    if status is TaskStatus.ready:
        yield from rederive(task_id, None)  # going back to ready (a retry) still waits for its own dependencies
    now_ready, now_blocked = (yield from refresh_dependents(task_id, ts)) if status is not None else ([], [])
    task = yield from get(task_id)
    assert task is not None
    yield Wake(TASKS)
    return TaskChange(task=task, now_ready=(yield from by_ids(now_ready)), now_blocked=(yield from by_ids(now_blocked)))


def release(session_id: str, max_attempts: int) -> Step[list[TaskRecord]]:
    """The session has ended: its work goes back to ready, or fails once attempted `max_attempts` times."""
    ts = now()
    ids = []
    for row in (yield HELD.all(session_id=session_id)):
        ids.append(row["id"])
        if row["attempts"] >= max_attempts:
            reason = f"gave up after {row['attempts']} attempts: its worker ended each time"
            yield GIVE_UP.run(id=row["id"], result=reason, ts=ts)
        else:
            yield RELEASE.run(id=row["id"], session_id=session_id, ts=ts)
        yield from refresh_dependents(row["id"], ts)
    if ids:
        yield Wake(TASKS)
    return (yield from by_ids(ids))


def unreserve(session_id: str) -> Step[list[TaskRecord]]:
    """The session has ended: tasks reserved for it go back to the pool, remembered for its respawn."""
    ids = [r["id"] for r in (yield UNRESERVE.all(session_id=session_id, ts=now()))]
    if ids:
        yield Wake(TASKS)
    return (yield from by_ids(ids))


def take_back(session_id: str) -> Step[list[TaskRecord]]:
    ids = [r["id"] for r in (yield TAKE_BACK.all(session_id=session_id, ts=now()))]
    if ids:
        yield Wake(TASKS)
    return (yield from by_ids(ids))


def set_text(task_id: str, title: str, description: str, acceptance: str, holder: str | None) -> Step[bool]:
    changed = yield SET_TEXT.count(
        id=task_id, title=title, description=description, acceptance=acceptance, holder=holder, ts=now()
    )
    if changed:
        yield Wake(TASKS)
    return bool(changed)


# -- reports ----------------------------------------------------------------------------------------------
def add_report(report: ReportRecord, status: SessionStatus | None) -> Step[None]:
    yield INSERT_REPORT.run(**report.model_dump())
    if status is not None:
        yield REPORTER_STATUS.run(id=report.session_id, status=status, ts=report.created_at)
    yield Wake(("sessions",))


def reports(session_id: str | None, task_id: str | None, limit: int) -> Step[list[ReportRecord]]:
    params = {k: v for k, v in {"session_id": session_id, "task_id": task_id}.items() if v is not None}
    query = statement(f"SELECT * FROM reports{where([f'{k} = :{k}' for k in params])} ORDER BY seq DESC LIMIT :limit")
    return [rows.report(r) for r in (yield query.all(**params, limit=limit))]
