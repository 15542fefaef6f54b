"""Tasks, dependencies and reports on SQLite.

Statuses of waiting tasks are kept materialised (pending / ready / blocked on a
dependency) and re-derived inside the same transaction that changes a
dependency, so `task_ready` is one index range even on a large DAG.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from maestro_mcp.errors import Conflict, NotFound
from maestro_mcp.models import (
    ClaimOutcome,
    NewTask,
    ReportKind,
    ReportRecord,
    SessionStatus,
    TaskChange,
    TaskRecord,
    TaskStatus,
    now,
)
from maestro_mcp.store import rows as rows_
from maestro_mcp.store.notify import Notifier

T = TypeVar("T")

# Scan this many ready tasks for one the claimer may take (file ownership can pass over some).
CLAIM_SCAN = 200
WAITING = (TaskStatus.pending, TaskStatus.ready)
FINISHED_BADLY = (TaskStatus.failed, TaskStatus.cancelled)


def _ph(n: int) -> str:
    return ",".join("?" * n)


def _deps_of(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, list[str]]:
    deps: dict[str, list[str]] = {i: [] for i in ids}
    # Chunked: SQLite caps the number of bound parameters.
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        for task_id, dep in conn.execute(
            f"SELECT task_id, depends_on FROM task_deps WHERE task_id IN ({_ph(len(chunk))})", chunk
        ):
            deps[task_id].append(dep)
    return deps


def _record(row: sqlite3.Row, deps: list[str]) -> TaskRecord:
    return rows_.task(row, deps, json.loads(row["files"]), json.loads(row["artifacts"]))


def _records(conn: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[TaskRecord]:
    deps = _deps_of(conn, [r["id"] for r in rows])
    return [_record(r, deps[r["id"]]) for r in rows]


def _get(conn: sqlite3.Connection, task_id: str) -> TaskRecord | None:
    row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
    return _records(conn, [row])[0] if row else None


def _derived(conn: sqlite3.Connection, task_id: str) -> tuple[TaskStatus, str | None]:
    """What a waiting task's status should be, from its dependencies' statuses."""
    rows = conn.execute(
        "SELECT t.id, t.title, t.status FROM task_deps d JOIN tasks t ON t.id = d.depends_on WHERE d.task_id = ?",
        (task_id,),
    ).fetchall()
    bad = [r for r in rows if r["status"] in (TaskStatus.failed.value, TaskStatus.cancelled.value)]
    if bad:
        names = ", ".join(f"{r['id']} ({r['title']}) is {r['status']}" for r in bad)
        return TaskStatus.blocked, f"dependency {names}: retry, cancel or rewire it"
    if all(r["status"] == TaskStatus.done.value for r in rows):
        return TaskStatus.ready, None
    return TaskStatus.pending, None


def _refresh_dependents(conn: sqlite3.Connection, task_id: str, ts: float) -> tuple[list[str], list[str]]:
    """Re-derive the waiting dependents of `task_id`; returns (ids now ready, ids now blocked)."""
    ready: list[str] = []
    blocked: list[str] = []
    rows = conn.execute(
        "SELECT t.id, t.status FROM task_deps d JOIN tasks t ON t.id = d.task_id WHERE d.depends_on = ?"
        " AND (t.status IN ('pending', 'ready') OR (t.status = 'blocked' AND t.blocked_on_deps = 1))",
        (task_id,),
    ).fetchall()
    for row in rows:
        status, reason = _derived(conn, row["id"])
        if status.value == row["status"]:
            continue
        conn.execute(
            "UPDATE tasks SET status = ?, blocked_reason = ?, blocked_on_deps = ?, updated_at = ? WHERE id = ?",
            (status.value, reason, int(status is TaskStatus.blocked), ts, row["id"]),
        )
        if status is TaskStatus.ready:
            ready.append(row["id"])
        elif status is TaskStatus.blocked:
            blocked.append(row["id"])
    return ready, blocked


def _by_ids(conn: sqlite3.Connection, ids: Sequence[str]) -> list[TaskRecord]:
    if not ids:
        return []
    rows = conn.execute(f"SELECT * FROM tasks WHERE id IN ({_ph(len(ids))}) ORDER BY seq", list(ids)).fetchall()
    return _records(conn, rows)


class SQLiteTasks:
    """The task half of `SQLiteStore` (mixed in); uses its `_read`, `_write` and `notifier`."""

    notifier: Notifier
    _read: Callable[..., Any]
    _write: Callable[..., Any]

    async def create_tasks(self, tasks: Sequence[NewTask]) -> list[TaskRecord]:
        def create(conn: sqlite3.Connection) -> list[TaskRecord]:
            for task in tasks:  # the service orders the batch so dependencies come first
                conn.execute(
                    "INSERT INTO tasks (id, key, title, description, acceptance, status, priority, wave, parent_id,"
                    " files, assignee_id, created_by, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        task.id,
                        task.key,
                        task.title,
                        task.description,
                        task.acceptance,
                        TaskStatus.pending.value,
                        task.priority,
                        task.wave,
                        task.parent_id,
                        json.dumps(task.files),
                        task.assignee_id,
                        task.created_by,
                        task.created_at,
                        task.created_at,
                    ),
                )
                conn.executemany(
                    "INSERT INTO task_deps (task_id, depends_on) VALUES (?, ?)", [(task.id, d) for d in task.depends_on]
                )
                status, reason = _derived(conn, task.id)
                conn.execute(
                    "UPDATE tasks SET status = ?, blocked_reason = ?, blocked_on_deps = ? WHERE id = ?",
                    (status.value, reason, int(status is TaskStatus.blocked), task.id),
                )
            return _by_ids(conn, [t.id for t in tasks])

        created: list[TaskRecord] = await self._write(create)
        self.notifier.publish(["tasks"])
        return created

    async def get_task(self, task_id: str) -> TaskRecord | None:
        result: TaskRecord | None = await self._read(_get, task_id)
        return result

    async def get_tasks(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
        ids = list(dict.fromkeys(task_ids))

        def get(conn: sqlite3.Connection) -> dict[str, TaskRecord]:
            found: list[TaskRecord] = []
            for start in range(0, len(ids), 500):
                found += _by_ids(conn, ids[start : start + 500])
            return {t.id: t for t in found}

        result: dict[str, TaskRecord] = await self._read(get)
        return result

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        assignee_id: str | None = None,
        parent_id: str | None = None,
    ) -> list[TaskRecord]:
        clauses, params = [], []
        for column, value in (
            ("t.status", status.value if status else None),
            ("t.assignee_id", assignee_id),
            ("t.parent_id", parent_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""

        def list_(conn: sqlite3.Connection) -> list[TaskRecord]:
            sql = f"SELECT t.* FROM tasks t {where} ORDER BY t.wave, t.priority DESC, t.seq"
            rows = conn.execute(sql, params).fetchall()
            deps: dict[str, list[str]] = {r["id"]: [] for r in rows}
            for task_id, dep in conn.execute(
                f"SELECT d.task_id, d.depends_on FROM task_deps d JOIN tasks t ON t.id = d.task_id {where}", params
            ):
                deps[task_id].append(dep)
            return [_record(r, deps[r["id"]]) for r in rows]

        result: list[TaskRecord] = await self._read(list_)
        return result

    async def ready_tasks(self, session_id: str, limit: int) -> list[TaskRecord]:
        def ready(conn: sqlite3.Connection) -> list[TaskRecord]:
            rows = conn.execute(
                "SELECT * FROM tasks WHERE status = 'ready' AND (assignee_id IS NULL OR assignee_id = ?)"
                " ORDER BY priority DESC, seq LIMIT ?",
                (session_id, limit),
            ).fetchall()
            return _records(conn, rows)

        result: list[TaskRecord] = await self._read(ready)
        return result

    async def claim_task(self, session_id: str, limit: int) -> ClaimOutcome:
        def claim(conn: sqlite3.Connection) -> ClaimOutcome:
            # This runs holding the write lock that every claimer of every process waits for, so it
            # reads little: a first page of limit + 1 candidates (narrow columns) is nearly always
            # enough, and the files of work in progress are only read when a candidate declares files.
            busy: list[tuple[str, list[str], str | None]] | None = None
            skipped: list[str] = []
            seen: list[str] = []
            claimed_id: str | None = None
            offset, page = 0, limit + 1
            while claimed_id is None and offset < CLAIM_SCAN:
                rows = conn.execute(
                    "SELECT id, title, files FROM tasks WHERE status = 'ready'"
                    " AND (assignee_id IS NULL OR assignee_id = ?) ORDER BY priority DESC, seq LIMIT ? OFFSET ?",
                    (session_id, page, offset),
                ).fetchall()
                for row in rows:
                    seen.append(row["id"])
                    if claimed_id is not None:
                        continue
                    files = json.loads(row["files"])
                    if files:
                        if busy is None:
                            busy = [
                                (r["id"], json.loads(r["files"]), r["name"])
                                for r in conn.execute(
                                    "SELECT t.id, t.files, s.name FROM tasks t"
                                    " LEFT JOIN sessions s ON s.id = t.assignee_id WHERE t.status = 'in_progress'"
                                    " AND t.files != '[]' AND t.assignee_id IS NOT ?",
                                    (session_id,),
                                )
                            ]
                        clash = rows_.file_clash(row["id"], row["title"], files, busy)
                        if clash is not None:
                            skipped.append(clash)
                            continue
                    cur = conn.execute(
                        "UPDATE tasks SET status = 'in_progress', assignee_id = ?, attempts = attempts + 1,"
                        " updated_at = ? WHERE id = ? AND status = 'ready'",
                        (session_id, now(), row["id"]),
                    )
                    if cur.rowcount == 1:
                        claimed_id = row["id"]
                if len(rows) < page:
                    break
                offset += page
                page = CLAIM_SCAN - offset
            claimed = _get(conn, claimed_id) if claimed_id else None
            rest = [task_id for task_id in seen if task_id != claimed_id][:limit]
            records = {t.id: t for t in _by_ids(conn, rest)}
            # In the order claimers see them (priority, then age), not the order of the lookup.
            return ClaimOutcome(claimed=claimed, ready=[records[i] for i in rest], skipped=skipped)

        outcome: ClaimOutcome = await self._write(claim)
        if outcome.claimed is not None:
            self.notifier.publish(["tasks"])
        return outcome

    async def update_task(
        self,
        task_id: str,
        *,
        expect: TaskStatus,
        status: TaskStatus | None = None,
        result: str | None = None,
        artifacts: Sequence[str] | None = None,
        assignee_id: str | None = None,
        unassign: bool = False,
        blocked_reason: str | None = None,
    ) -> TaskChange:
        def update(conn: sqlite3.Connection) -> TaskChange:
            ts = now()
            sets = ["updated_at = ?"]
            params: list[Any] = [ts]
            if status is not None:
                sets += ["status = ?", "blocked_reason = ?", "blocked_on_deps = 0"]
                params += [status.value, blocked_reason if status is TaskStatus.blocked else None]
            if result is not None:
                sets.append("result = ?")
                params.append(result)
            if artifacts is not None:
                sets.append("artifacts = ?")
                params.append(json.dumps(list(artifacts)))
            if assignee_id is not None:
                sets.append("assignee_id = ?")
                params.append(assignee_id)
            elif unassign:
                sets.append("assignee_id = NULL")
            cur = conn.execute(
                f"UPDATE tasks SET {', '.join(sets)} WHERE id = ? AND status = ?", [*params, task_id, expect.value]
            )
            if cur.rowcount != 1:
                current = _get(conn, task_id)
                if current is None:
                    raise NotFound(f"No task {task_id!r}.", "Call task_list to see task ids.")
                raise Conflict(
                    f"Task {task_id} is {current.status.value} now, not {expect.value}: it changed meanwhile.",
                    "Call task_get and decide again.",
                )
            if status is TaskStatus.ready:
                # Going back to ready (a retry) still waits for its own dependencies.
                derived, reason = _derived(conn, task_id)
                conn.execute(
                    "UPDATE tasks SET status = ?, blocked_reason = ?, blocked_on_deps = ? WHERE id = ?",
                    (derived.value, reason, int(derived is TaskStatus.blocked), task_id),
                )
            ready, blocked = _refresh_dependents(conn, task_id, ts) if status is not None else ([], [])
            task = _get(conn, task_id)
            assert task is not None
            return TaskChange(task=task, now_ready=_by_ids(conn, ready), now_blocked=_by_ids(conn, blocked))

        change: TaskChange = await self._write(update)
        self.notifier.publish(["tasks"])
        return change

    async def release_tasks(self, session_id: str, max_attempts: int) -> list[TaskRecord]:
        def release(conn: sqlite3.Connection) -> list[TaskRecord]:
            ts = now()
            ids = []
            for row in conn.execute(
                "SELECT id, attempts FROM tasks WHERE assignee_id = ? AND status = 'in_progress'", (session_id,)
            ).fetchall():
                ids.append(row["id"])
                if row["attempts"] >= max_attempts:
                    conn.execute(
                        "UPDATE tasks SET status = 'failed', result = ?, updated_at = ? WHERE id = ?",
                        (f"gave up after {row['attempts']} attempts: its worker ended each time", ts, row["id"]),
                    )
                else:
                    conn.execute(
                        "UPDATE tasks SET status = 'ready', assignee_id = NULL, updated_at = ? WHERE id = ?",
                        (ts, row["id"]),
                    )
                _refresh_dependents(conn, row["id"], ts)
            return _by_ids(conn, ids)

        released: list[TaskRecord] = await self._write(release)
        if released:
            self.notifier.publish(["tasks"])
        return released

    async def add_report(self, report: ReportRecord, status: SessionStatus | None) -> None:
        def add(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO reports (id, session_id, task_id, kind, summary, artifacts, percent, created_at)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (
                    report.id,
                    report.session_id,
                    report.task_id,
                    report.kind.value,
                    report.summary,
                    json.dumps(report.artifacts),
                    report.percent,
                    report.created_at,
                ),
            )
            if status is not None:
                conn.execute(
                    "UPDATE sessions SET status = ?, last_seen_at = ? WHERE id = ? AND ended_at IS NULL",
                    (status.value, report.created_at, report.session_id),
                )

        await self._write(add)
        self.notifier.publish(["sessions"])

    async def reports(
        self, *, session_id: str | None = None, task_id: str | None = None, limit: int = 50
    ) -> list[ReportRecord]:
        clauses, params = [], []
        for column, value in (("session_id", session_id), ("task_id", task_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""

        def list_(conn: sqlite3.Connection) -> list[ReportRecord]:
            rows = conn.execute(f"SELECT * FROM reports {where} ORDER BY seq DESC LIMIT ?", [*params, limit])
            return [
                ReportRecord(
                    id=r["id"],
                    session_id=r["session_id"],
                    task_id=r["task_id"],
                    kind=ReportKind(r["kind"]),
                    summary=r["summary"],
                    artifacts=json.loads(r["artifacts"]),
                    percent=r["percent"],
                    created_at=r["created_at"],
                )
                for r in rows
            ]

        result: list[ReportRecord] = await self._read(list_)
        return result
