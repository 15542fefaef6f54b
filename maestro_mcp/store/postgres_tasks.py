"""Tasks, dependencies and reports on PostgreSQL: the same rules as `sqlite_tasks`, statement for statement.

Waiting tasks keep a materialised status (pending / ready / blocked on a
dependency), re-derived in the transaction that changes a dependency. Claims
take a transaction advisory lock first: claimers take turns, so the
file-ownership check of each sees every claim committed before it, and the
conditional UPDATE (``WHERE status = 'ready'``) hands each task to one claimer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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

from . import rows as rows_
from .postgres_base import PgOps, Tx

# Scan this many ready tasks for one the claimer may take (file ownership can pass over some).
CLAIM_SCAN = 200


def _record(row: Any, deps: list[str]) -> TaskRecord:
    return rows_.task(row, deps, list(row["files"]), list(row["artifacts"]))


async def _records(conn: Any, rows: Sequence[Any]) -> list[TaskRecord]:
    ids = [r["id"] for r in rows]
    deps: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        for d in await conn.fetch(
            "SELECT task_id, depends_on FROM task_deps WHERE task_id = ANY($1::text[]) ORDER BY task_id, depends_on",
            ids,
        ):
            deps[d["task_id"]].append(d["depends_on"])
    return [_record(r, deps[r["id"]]) for r in rows]


async def _get(conn: Any, task_id: str) -> TaskRecord | None:
    row = await conn.fetchrow("SELECT * FROM tasks WHERE id = $1", task_id)
    return (await _records(conn, [row]))[0] if row else None


async def _by_ids(conn: Any, ids: Sequence[str]) -> list[TaskRecord]:
    if not ids:
        return []
    rows = await conn.fetch("SELECT * FROM tasks WHERE id = ANY($1::text[]) ORDER BY seq", list(ids))
    return await _records(conn, rows)


async def _derived(conn: Any, task_id: str) -> tuple[TaskStatus, str | None]:
    """What a waiting task's status should be, from its dependencies' statuses."""
    rows = await conn.fetch(
        "SELECT t.id, t.title, t.status FROM task_deps d JOIN tasks t ON t.id = d.depends_on WHERE d.task_id = $1"
        " ORDER BY t.seq",
        task_id,
    )
    bad = [r for r in rows if r["status"] in (TaskStatus.failed.value, TaskStatus.cancelled.value)]
    if bad:
        names = ", ".join(f"{r['id']} ({r['title']}) is {r['status']}" for r in bad)
        return TaskStatus.blocked, f"dependency {names}: retry, cancel or rewire it"
    if all(r["status"] == TaskStatus.done.value for r in rows):
        return TaskStatus.ready, None
    return TaskStatus.pending, None


async def _set_derived(conn: Any, task_id: str, status: TaskStatus, reason: str | None, ts: float | None) -> None:
    await conn.execute(
        "UPDATE tasks SET status = $1, blocked_reason = $2, blocked_on_deps = $3,"
        " updated_at = COALESCE($4, updated_at) WHERE id = $5",
        status.value,
        reason,
        status is TaskStatus.blocked,
        ts,
        task_id,
    )


async def _refresh_dependents(conn: Any, task_id: str, ts: float) -> tuple[list[str], list[str]]:
    """Re-derive the waiting dependents of `task_id`; returns (ids now ready, ids now blocked)."""
    ready: list[str] = []
    blocked: list[str] = []
    rows = await conn.fetch(
        "SELECT t.id, t.status FROM task_deps d JOIN tasks t ON t.id = d.task_id WHERE d.depends_on = $1"
        " AND (t.status IN ('pending', 'ready') OR (t.status = 'blocked' AND t.blocked_on_deps)) ORDER BY t.seq",
        task_id,
    )
    for row in rows:
        status, reason = await _derived(conn, row["id"])
        if status.value == row["status"]:
            continue
        await _set_derived(conn, row["id"], status, reason, ts)
        if status is TaskStatus.ready:
            ready.append(row["id"])
        elif status is TaskStatus.blocked:
            blocked.append(row["id"])
    return ready, blocked


class PostgresTasks(PgOps):
    """The task half of `PostgresStore` (mixed in); uses its `_read`, `_write` and claim lock key."""

    _claim_key: int

    async def create_tasks(self, tasks: Sequence[NewTask]) -> list[TaskRecord]:
        async def create(tx: Tx) -> list[TaskRecord]:
            conn = tx.conn
            for task in tasks:  # the service orders the batch so dependencies come first
                inserted = await conn.fetchval(
                    "INSERT INTO tasks (id, key, title, description, acceptance, status, priority, wave, parent_id,"
                    " files, assignee_id, created_by, created_at, updated_at)"
                    " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$13)"
                    " ON CONFLICT (id) DO NOTHING RETURNING seq",
                    task.id,
                    task.key,
                    task.title,
                    task.description,
                    task.acceptance,
                    TaskStatus.pending.value,
                    task.priority,
                    task.wave,
                    task.parent_id,
                    list(task.files),
                    task.assignee_id,
                    task.created_by,
                    task.created_at,
                )
                if inserted is None:
                    continue  # a retry after a lost COMMIT: this task is already stored
                if task.depends_on:
                    await conn.execute(
                        "INSERT INTO task_deps (task_id, depends_on) SELECT $1, d FROM unnest($2::text[]) AS d",
                        task.id,
                        list(dict.fromkeys(task.depends_on)),
                    )
                status, reason = await _derived(conn, task.id)
                await _set_derived(conn, task.id, status, reason, None)
            await tx.notify(["tasks"])
            return await _by_ids(conn, [t.id for t in tasks])

        created: list[TaskRecord] = await self._write(create, idempotent=True)
        return created

    async def get_task(self, task_id: str) -> TaskRecord | None:
        result: TaskRecord | None = await self._read(lambda c: _get(c, task_id), snapshot=True)
        return result

    async def get_tasks(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
        ids = list(dict.fromkeys(task_ids))

        async def get(conn: Any) -> dict[str, TaskRecord]:
            return {t.id: t for t in await _by_ids(conn, ids)}

        result: dict[str, TaskRecord] = await self._read(get, snapshot=True)
        return result

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        assignee_id: str | None = None,
        parent_id: str | None = None,
    ) -> list[TaskRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("status", status.value if status else None),
            ("assignee_id", assignee_id),
            ("parent_id", parent_id),
        ):
            if value is not None:
                params.append(value)
                clauses.append(f"{column} = ${len(params)}")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""

        async def list_(conn: Any) -> list[TaskRecord]:
            rows = await conn.fetch(f"SELECT * FROM tasks {where} ORDER BY wave, priority DESC, seq", *params)
            return await _records(conn, rows)

        result: list[TaskRecord] = await self._read(list_, snapshot=True)
        return result

    async def ready_tasks(self, session_id: str, limit: int) -> list[TaskRecord]:
        async def ready(conn: Any) -> list[TaskRecord]:
            rows = await conn.fetch(
                "SELECT * FROM tasks WHERE status = 'ready' AND (assignee_id IS NULL OR assignee_id = $1)"
                " ORDER BY priority DESC, seq LIMIT $2",
                session_id,
                limit,
            )
            return await _records(conn, rows)

        result: list[TaskRecord] = await self._read(ready, snapshot=True)
        return result

    async def claim_task(self, session_id: str, limit: int) -> ClaimOutcome:
        async def claim(tx: Tx) -> ClaimOutcome:
            conn = tx.conn
            # Claimers take turns (the lock is released at COMMIT), so each one sees the files of every
            # claim before it. Holding it, read little: a first page of limit + 1 narrow candidates is
            # nearly always enough, and the files of work in progress only when a candidate has files.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._claim_key)
            busy: list[tuple[str, list[str], str | None]] | None = None
            skipped: list[str] = []
            seen: list[str] = []
            claimed_id: str | None = None
            offset, page = 0, limit + 1
            while claimed_id is None and offset < CLAIM_SCAN:
                rows = await conn.fetch(
                    "SELECT id, title, files FROM tasks WHERE status = 'ready'"
                    " AND (assignee_id IS NULL OR assignee_id = $1) ORDER BY priority DESC, seq LIMIT $2 OFFSET $3",
                    session_id,
                    page,
                    offset,
                )
                for row in rows:
                    seen.append(row["id"])
                    if claimed_id is not None:
                        continue
                    files = list(row["files"])
                    if files:
                        if busy is None:
                            busy = [
                                (r["id"], list(r["files"]), r["name"])
                                for r in await conn.fetch(
                                    "SELECT t.id, t.files, s.name FROM tasks t"
                                    " LEFT JOIN sessions s ON s.id = t.assignee_id WHERE t.status = 'in_progress'"
                                    " AND cardinality(t.files) > 0 AND t.assignee_id IS DISTINCT FROM $1",
                                    session_id,
                                )
                            ]
                        clash = rows_.file_clash(row["id"], row["title"], files, busy)
                        if clash is not None:
                            skipped.append(clash)
                            continue
                    status = await conn.execute(
                        "UPDATE tasks SET status = 'in_progress', assignee_id = $1, attempts = attempts + 1,"
                        " updated_at = $2 WHERE id = $3 AND status = 'ready'",
                        session_id,
                        now(),
                        row["id"],
                    )
                    if status == "UPDATE 1":
                        claimed_id = row["id"]
                if len(rows) < page:
                    break
                offset += page
                page = CLAIM_SCAN - offset
            claimed = await _get(conn, claimed_id) if claimed_id else None
            rest = [task_id for task_id in seen if task_id != claimed_id][:limit]
            records = {t.id: t for t in await _by_ids(conn, rest)}
            if claimed is not None:
                await tx.notify(["tasks"])
            # In the order claimers see them (priority, then age), not the order of the lookup.
            return ClaimOutcome(claimed=claimed, ready=[records[i] for i in rest], skipped=skipped)

        outcome: ClaimOutcome = await self._write(claim)
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
        async def update(tx: Tx) -> TaskChange:
            conn = tx.conn
            ts = now()
            params: list[Any] = [ts]
            sets = ["updated_at = $1"]

            def put(column: str, value: Any) -> None:
                params.append(value)
                sets.append(f"{column} = ${len(params)}")

            if status is not None:
                put("status", status.value)
                put("blocked_reason", blocked_reason if status is TaskStatus.blocked else None)
                sets.append("blocked_on_deps = FALSE")
            if result is not None:
                put("result", result)
            if artifacts is not None:
                put("artifacts", list(artifacts))
            if assignee_id is not None:
                put("assignee_id", assignee_id)
            elif unassign:
                sets.append("assignee_id = NULL")
            n = len(params)
            done = await conn.execute(
                f"UPDATE tasks SET {', '.join(sets)} WHERE id = ${n + 1} AND status = ${n + 2}",
                *params,
                task_id,
                expect.value,
            )
            if done != "UPDATE 1":
                current = await _get(conn, task_id)
                if current is None:
                    raise NotFound(f"No task {task_id!r}.", "Call task_list to see task ids.")
                raise Conflict(
                    f"Task {task_id} is {current.status.value} now, not {expect.value}: it changed meanwhile.",
                    "Call task_get and decide again.",
                )
            if status is TaskStatus.ready:
                # Going back to ready (a retry) still waits for its own dependencies.
                derived, reason = await _derived(conn, task_id)
                await _set_derived(conn, task_id, derived, reason, None)
            ready, blocked = await _refresh_dependents(conn, task_id, ts) if status is not None else ([], [])
            task = await _get(conn, task_id)
            assert task is not None
            await tx.notify(["tasks"])
            return TaskChange(task=task, now_ready=await _by_ids(conn, ready), now_blocked=await _by_ids(conn, blocked))

        change: TaskChange = await self._write(update)
        return change

    async def release_tasks(self, session_id: str, max_attempts: int) -> list[TaskRecord]:
        async def release(tx: Tx) -> list[TaskRecord]:
            conn = tx.conn
            ts = now()
            ids = []
            for row in await conn.fetch(
                "SELECT id, attempts FROM tasks WHERE assignee_id = $1 AND status = 'in_progress' ORDER BY seq"
                " FOR UPDATE",
                session_id,
            ):
                ids.append(row["id"])
                if row["attempts"] >= max_attempts:
                    await conn.execute(
                        "UPDATE tasks SET status = 'failed', result = $1, updated_at = $2 WHERE id = $3",
                        f"gave up after {row['attempts']} attempts: its worker ended each time",
                        ts,
                        row["id"],
                    )
                else:
                    await conn.execute(
                        "UPDATE tasks SET status = 'ready', assignee_id = NULL, updated_at = $1 WHERE id = $2",
                        ts,
                        row["id"],
                    )
                await _refresh_dependents(conn, row["id"], ts)
            if ids:
                await tx.notify(["tasks"])
            return await _by_ids(conn, ids)

        released: list[TaskRecord] = await self._write(release)
        return released

    async def add_report(self, report: ReportRecord, status: SessionStatus | None) -> None:
        async def add(tx: Tx) -> None:
            await tx.conn.execute(
                "INSERT INTO reports (id, session_id, task_id, kind, summary, artifacts, percent, created_at)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING",
                report.id,
                report.session_id,
                report.task_id,
                report.kind.value,
                report.summary,
                list(report.artifacts),
                report.percent,
                report.created_at,
            )
            if status is not None:
                await tx.conn.execute(
                    "UPDATE sessions SET status = $1, last_seen_at = $2 WHERE id = $3 AND ended_at IS NULL",
                    status.value,
                    report.created_at,
                    report.session_id,
                )
            await tx.notify(["sessions"])

        await self._write(add, idempotent=True)

    async def reports(
        self, *, session_id: str | None = None, task_id: str | None = None, limit: int = 50
    ) -> list[ReportRecord]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("session_id", session_id), ("task_id", task_id)):
            if value is not None:
                params.append(value)
                clauses.append(f"{column} = ${len(params)}")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM reports {where} ORDER BY seq DESC LIMIT ${len(params) + 1}"
        rows = await self._read(lambda c: c.fetch(sql, *params, limit))
        return [
            ReportRecord(
                id=r["id"],
                session_id=r["session_id"],
                task_id=r["task_id"],
                kind=ReportKind(r["kind"]),
                summary=r["summary"],
                artifacts=list(r["artifacts"]),
                percent=r["percent"],
                created_at=r["created_at"],
            )
            for r in rows
        ]
