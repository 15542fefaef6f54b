"""Sessions: the statements and steps of who is here, and the combined read behind `whoami`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from maestro_mcp.errors import Conflict, NotFound
from maestro_mcp.models import (
    NewMessage,
    Role,
    SessionEnding,
    SessionOverview,
    SessionRecord,
    SessionStatus,
    TaskRecord,
    TaskStatus,
    now,
)

from . import approvals, mail, rows, tasks
from .mail import unread_of
from .sql import Statement, statement, where
from .steps import Refused, Step, Wake
from .tasks import STICKY_STATUS, TASKS_FROM

SESSIONS = ("sessions",)

# The columns a new session is inserted with (the rest start NULL).
NEW_COLUMNS = (
    "id", "name", "role", "agent", "parent_id", "status", "workspace", "pid", "token_hash",
    "created_at", "last_seen_at", "directive", "profile", "isolation", "branch", "spawner_pid", "host",
)  # fmt: skip
# ON CONFLICT (id): a retry after a lost COMMIT finds its own row and does nothing.
INSERT = Statement(
    f"INSERT INTO sessions ({', '.join(NEW_COLUMNS)}) VALUES ({', '.join(':' + c for c in NEW_COLUMNS)})"
    " ON CONFLICT (id) DO NOTHING"
)
GET = Statement("SELECT * FROM sessions WHERE id = :key OR name = :key ORDER BY (id = :key) DESC LIMIT 1")
BY_ID = Statement("SELECT * FROM sessions WHERE id = :id")
BY_TOKEN = Statement("SELECT * FROM sessions WHERE token_hash = :token_hash")
SET_TOKEN = Statement("UPDATE sessions SET token_hash = :token_hash WHERE id = :id")
SET_STATUS = Statement(
    f"UPDATE sessions SET {STICKY_STATUS}, last_seen_at = :ts WHERE id = :id AND ended_at IS NULL RETURNING *"
)
TOUCH = Statement("UPDATE sessions SET last_seen_at = :ts, pid = COALESCE(:pid, pid) WHERE id = :id")
SET_PROCESS = Statement(
    "UPDATE sessions SET pid = :pid, spawner_pid = :spawner_pid, log_path = :log_path WHERE id = :id"
)
SET_EXIT = Statement(
    "UPDATE sessions SET exit_code = :exit_code, status = :status WHERE id = :id AND ended_at IS NOT NULL"
)
# The heartbeat of the process that held it before is cleared: the reviving process beats anew (an HTTP
# session never does), and a stale one would be taken for the death of the new one.
# A spawned session resumed by its own server keeps the pid its spawner recorded (`keep_pid`), even one
# recorded after the server read the row.
REVIVING = (
    "UPDATE sessions SET status = :status, pid = CASE WHEN :keep_pid THEN pid ELSE :pid END, ended_at = NULL,"
    " exit_code = NULL, last_seen_at = :ts,"
    " host = :host, heartbeat_at = NULL, spawner_pid = COALESCE(:spawner_pid, spawner_pid) WHERE id = :id"
)
REVIVE = Statement(f"{REVIVING} RETURNING *")
# Taking over or respawning an ended session: of two processes doing it at once, one wins.
REVIVE_ENDED = Statement(f"{REVIVING} AND ended_at IS NOT NULL RETURNING *")
END = Statement(
    "UPDATE sessions SET status = :status, exit_code = :exit_code, ended_at = :ts, last_seen_at = :ts"
    " WHERE id = :id AND ended_at IS NULL RETURNING *"
)
# One per serve process every few seconds: the cheapest statement that proves it is alive.
HEARTBEAT = Statement("UPDATE sessions SET heartbeat_at = :ts, host = :host WHERE id = :id AND ended_at IS NULL")
# Live sessions a sweeper on `host` can judge: those with a heartbeat, its own (by pid) and expired ones,
# and those still being spawned on this host (by their spawner's pid: it may have died before the agent ran).
SUSPECTS = Statement(
    "SELECT * FROM sessions WHERE ended_at IS NULL AND (heartbeat_at IS NOT NULL OR status = 'spawning')"
    " AND (host = :host OR heartbeat_at < :expired) ORDER BY created_at, id"
)
# The parent and its children: whoami's parent and siblings in one read.
FAMILY = Statement("SELECT * FROM sessions WHERE id = :parent_id OR parent_id = :parent_id ORDER BY created_at, id")
MY_OPEN_TASKS = Statement(
    f"{TASKS_FROM} WHERE t.assignee_id = :id AND t.status {{NOT_IN :finished}} ORDER BY t.wave, t.priority DESC, t.seq"
)
FINISHED = [TaskStatus.done.value, TaskStatus.cancelled.value, TaskStatus.failed.value]
# A session's unread mail and the active directives concerning it: always one row, then one per directive;
# with `spend`, the spend of the session and its children (a coordinator's team, for whoami).
NOTICES = Statement(
    "SELECT u.n, u.top, u.spend, d.id, d.text, d.priority, d.created_at, s.name AS target FROM"
    " (SELECT COUNT(*) AS n, MIN(priority) AS top,"
    " (SELECT SUM(st.cost_usd) FROM session_stats st JOIN sessions t ON t.id = st.session_id"
    " WHERE t.id = :id OR t.parent_id = :id) AS spend"
    " FROM receipts WHERE session_id = :id AND status = 'sent') u"
    " LEFT JOIN directives d ON d.cleared_at IS NULL AND (d.target_id IS NULL OR d.target_id = :id)"
    " LEFT JOIN sessions s ON s.id = d.target_id ORDER BY d.created_at, d.id"
)


def create(record: SessionRecord, reserve: Sequence[TaskRecord] = ()) -> Step[SessionRecord]:
    try:
        yield INSERT.run(**record.model_dump(include=set(NEW_COLUMNS)))
    except Refused as exc:
        if exc.kind == "unique" and exc.what == "sessions.name":
            raise Conflict(
                f"The session name {record.name!r} is taken.",
                "Choose another name, or leave it out to get a generated one.",
            ) from exc
        raise
    for task in reserve:  # each as the caller saw it: one that moved meanwhile undoes the whole insert
        yield from tasks.update(
            task.id, task.status, None, None, None, record.id, False, None, expect_assignee=task.assignee_id
        )
    yield Wake(SESSIONS)
    return record


def get(key: str) -> Step[SessionRecord | None]:
    row = yield GET.one(key=key)
    return rows.session(row) if row else None


def by_token(token_hash: str) -> Step[SessionRecord | None]:
    row = yield BY_TOKEN.one(token_hash=token_hash)
    return rows.session(row) if row else None


def set_token(session_id: str, token_hash: str | None) -> Step[bool]:
    changed: int = yield SET_TOKEN.count(id=session_id, token_hash=token_hash)
    return changed == 1


def listed(
    role: Role | None, status: SessionStatus | None, parent_id: str | None, live: bool | None
) -> Step[list[SessionRecord]]:
    clauses: list[str] = []
    if role is not None:
        clauses.append("role = :role")
    if status is not None:
        clauses.append("status = :status")
    if parent_id is not None:
        clauses.append("parent_id = :parent_id")
    if live is not None:
        clauses.append("ended_at IS NULL" if live else "ended_at IS NOT NULL")
    query = statement(f"SELECT * FROM sessions{where(clauses)} ORDER BY created_at, id")
    params = {"role": role, "status": status, "parent_id": parent_id}
    found = yield query.all(**{k: v for k, v in params.items() if v is not None})
    return [rows.session(r) for r in found]


def set_status(session_id: str, status: SessionStatus) -> Step[SessionRecord | None]:
    row = yield SET_STATUS.one(id=session_id, status=status, ts=now())
    yield Wake(SESSIONS)
    return rows.session(row) if row else None


def touch(session_id: str, pid: int | None) -> Step[None]:
    yield TOUCH.run(id=session_id, pid=pid, ts=now())


def heartbeat(session_id: str, host: str) -> Step[bool]:
    changed: int = yield HEARTBEAT.count(id=session_id, host=host, ts=now())
    return changed == 1


def suspects(host: str, expired: float) -> Step[list[SessionRecord]]:
    return [rows.session(r) for r in (yield SUSPECTS.all(host=host, expired=expired))]


def set_process(session_id: str, pid: int, spawner_pid: int | None, log_path: str | None) -> Step[None]:
    yield SET_PROCESS.run(id=session_id, pid=pid, spawner_pid=spawner_pid, log_path=log_path)


def set_exit_code(session_id: str, exit_code: int, status: SessionStatus) -> Step[None]:
    yield SET_EXIT.run(id=session_id, exit_code=exit_code, status=status)
    yield Wake(SESSIONS)


def revive(
    session_id: str,
    status: SessionStatus,
    pid: int | None,
    spawner: tuple[int, str] | None,
    ended_only: bool,
    keep_pid: bool,
) -> Step[SessionRecord]:
    spawner_pid, host = spawner if spawner is not None else (None, None)
    query = REVIVE_ENDED if ended_only else REVIVE
    row = yield query.one(
        id=session_id, status=status, pid=pid, keep_pid=keep_pid, spawner_pid=spawner_pid, host=host, ts=now()
    )
    if row is None:
        current = yield BY_ID.one(id=session_id)
        if current is None:
            raise NotFound(f"No session {session_id!r}.")
        raise Conflict(
            f"Session {current['name']} is live again: another process took it over or respawned it meanwhile.",
            "Call list_sessions to see who holds it now.",
        )
    yield Wake(SESSIONS)
    return rows.session(row)


def end(
    session_id: str,
    status: SessionStatus,
    exit_code: int | None,
    max_attempts: int,
    tell: Callable[[SessionEnding], NewMessage | None] | None,
) -> Step[SessionEnding | None]:
    """End a live session, let go of all it held and tell its parent, in one transaction: a process
    killed or cancelled halfway leaves neither an ended session holding tasks nor an end nobody is
    told of (only the winner of the end tells, so a later try would not)."""
    row = yield END.one(id=session_id, status=status, exit_code=exit_code, ts=now())
    if row is None:
        return None  # someone else ended it first
    session = rows.session(row)
    released = yield from tasks.release(session_id, max_attempts)
    freed = yield from tasks.unreserve(session_id)
    unanswered = yield from approvals.close(session_id, f"{session.name} ended while it waited")
    parent = None
    if session.parent_id is not None:
        parent_row = yield BY_ID.one(id=session.parent_id)
        parent = rows.session(parent_row) if parent_row else None
    last = yield from tasks.reports(session_id, None, 1)
    yield Wake(SESSIONS)
    ending = SessionEnding(
        session=session,
        released=released,
        freed=freed,
        unanswered=unanswered,
        parent=parent,
        last_report=last[0] if last else None,
    )
    message = tell(ending) if tell is not None else None
    if message is not None:
        yield from mail.insert(message)
    return ending


def coordinator_above(session: SessionRecord | None) -> Step[SessionRecord | None]:
    """The nearest coordinator at or above `session`."""
    for _ in range(64):  # parent chains are short; the bound only guards against a corrupt cycle
        if session is None or session.role is Role.coordinator:
            return session
        if session.parent_id is None:
            return None
        row = yield BY_ID.one(id=session.parent_id)
        session = rows.session(row) if row else None
    return None


def overview(me: SessionRecord) -> Step[SessionOverview]:
    """Everything `whoami` shows besides the caller's own record, in as few statements as it takes."""
    parent: SessionRecord | None = None
    siblings: list[SessionRecord] = []
    if me.parent_id is not None:
        for row in (yield FAMILY.all(parent_id=me.parent_id)):
            record = rows.session(row)
            if record.id == me.parent_id:
                parent = record
            elif record.id != me.id:
                siblings.append(record)
    coordinator = yield from coordinator_above(parent)
    tasks = [rows.task(r) for r in (yield MY_OPEN_TASKS.all(id=me.id, finished=FINISHED))]
    notices = yield NOTICES.all(id=me.id)
    team_spend = float(notices[0]["spend"] or 0.0) if me.role is Role.coordinator else None
    return SessionOverview(
        parent=parent,
        coordinator=coordinator,
        siblings=siblings,
        tasks=tasks,
        directives=[rows.directive(r) for r in notices if r["id"] is not None],
        unread=unread_of(notices[0]),
        team_spend_usd=team_spend,
    )
