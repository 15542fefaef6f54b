"""Rows to models, shared by every backend: sqlite3.Row and asyncpg.Record both index by column name.

The backends differ only in how they store lists (JSON text on SQLite, arrays on PostgreSQL), so
task rows take their decoded `files` and `artifacts` from the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from maestro_mcp.files import any_overlap
from maestro_mcp.models import (
    Message,
    MessageType,
    Priority,
    Role,
    SessionRecord,
    SessionStatus,
    TaskRecord,
    TaskStatus,
    iso,
)

# sqlite3.Row and asyncpg.Record: indexable by column name, though neither is a typing Mapping.
Row = Any

MESSAGE_COLUMNS = (
    "m.seq, m.id, m.thread_id, m.reply_to, s.name AS sender, m.subject, m.body, m.priority, m.type, "
    "m.task_id, m.created_at"
)
MESSAGE_FROM = "messages m JOIN sessions s ON s.id = m.sender_id"


def message(row: Row) -> Message:
    return Message(
        message_id=row["id"],
        thread_id=row["thread_id"],
        reply_to=row["reply_to"],
        sender=row["sender"],
        subject=row["subject"],
        body=row["body"],
        priority=Priority.from_rank(row["priority"]),
        type=MessageType(row["type"]),
        task_id=row["task_id"],
        created_at=iso(row["created_at"]) or "",
    )


def session(row: Row) -> SessionRecord:
    return SessionRecord(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        agent=row["agent"],
        parent_id=row["parent_id"],
        status=SessionStatus(row["status"]),
        workspace=row["workspace"],
        pid=row["pid"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        ended_at=row["ended_at"],
        exit_code=row["exit_code"],
        token_hash=row["token_hash"],
        spawner_pid=row["spawner_pid"],
        log_path=row["log_path"],
        directive=row["directive"],
        profile=row["profile"],
        isolation=row["isolation"],
        branch=row["branch"],
    )


# The columns a new session is inserted with, in the order of `session_params`.
SESSION_COLUMNS = (
    "id", "name", "role", "agent", "parent_id", "status", "workspace", "pid", "token_hash",
    "created_at", "last_seen_at", "directive", "profile", "isolation", "branch",
)  # fmt: skip


def session_params(record: SessionRecord) -> tuple[Any, ...]:
    return (
        record.id,
        record.name,
        record.role.value,
        record.agent,
        record.parent_id,
        record.status.value,
        record.workspace,
        record.pid,
        record.token_hash,
        record.created_at,
        record.last_seen_at,
        record.directive,
        record.profile,
        record.isolation,
        record.branch,
    )


def task(row: Row, deps: list[str], files: list[str], artifacts: list[str]) -> TaskRecord:
    return TaskRecord(
        id=row["id"],
        key=row["key"],
        title=row["title"],
        description=row["description"],
        acceptance=row["acceptance"],
        status=TaskStatus(row["status"]),
        priority=row["priority"],
        wave=row["wave"],
        parent_id=row["parent_id"],
        depends_on=deps,
        files=files,
        assignee_id=row["assignee_id"],
        created_by=row["created_by"],
        result=row["result"],
        artifacts=artifacts,
        blocked_reason=row["blocked_reason"],
        blocked_on_deps=bool(row["blocked_on_deps"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


Busy = Sequence[tuple[str, list[str], str | None]]
"""Work in progress by others: (task id, declared files, assignee name)."""


def file_clash(task_id: str, title: str, files: list[str], busy: Busy) -> str | None:
    """Why a claimer must pass over this ready task (its files overlap work in progress), or None."""
    for other, theirs, owner in busy:
        for mine, their in any_overlap(files, theirs):
            return f"{task_id} ({title}): its file {mine!r} overlaps {their!r} of {other}, in progress by {owner}"
    return None
