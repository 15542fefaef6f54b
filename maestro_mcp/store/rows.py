"""Rows to models, shared by every backend: sqlite3.Row and asyncpg.Record both index by column name.

Stored lists come back as JSON text (SQLite) or arrays (PostgreSQL); `as_list` reads either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from maestro_mcp.files import any_overlap
from maestro_mcp.models import (
    Directive,
    Message,
    MessageType,
    Priority,
    Receipt,
    ReceiptStatus,
    ReportKind,
    ReportRecord,
    Role,
    SessionRecord,
    SessionStatus,
    TaskRecord,
    TaskStatus,
    iso,
)

from .sql import as_list

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
        host=row["host"],
        heartbeat_at=row["heartbeat_at"],
    )


def task(row: Row) -> TaskRecord:
    """A task row selected with its dependencies aggregated as `deps` (see `tasks.TASK_COLUMNS`)."""
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
        depends_on=as_list(row["deps"]),
        files=as_list(row["files"]),
        assignee_id=row["assignee_id"],
        created_by=row["created_by"],
        result=row["result"],
        artifacts=as_list(row["artifacts"]),
        blocked_reason=row["blocked_reason"],
        blocked_on_deps=bool(row["blocked_on_deps"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        released_from=row["released_from"],
    )


Busy = Sequence[tuple[str, list[str], str | None]]
"""Work in progress by others: (task id, declared files, assignee name)."""


def file_clash(task_id: str, title: str, files: list[str], busy: Busy) -> str | None:
    """Why a claimer must pass over this ready task (its files overlap work in progress), or None."""
    for other, theirs, owner in busy:
        for mine, their in any_overlap(files, theirs):
            return f"{task_id} ({title}): its file {mine!r} overlaps {their!r} of {other}, in progress by {owner}"
    return None


def receipt(row: Row) -> Receipt:
    return Receipt(
        session_id=row["session_id"],
        name=row["name"],
        status=ReceiptStatus(row["status"]),
        delivered_at=iso(row["delivered_at"]),
        acked_at=iso(row["acked_at"]),
    )


def directive(row: Row) -> Directive:
    return Directive(
        directive_id=row["id"],
        text=row["text"],
        to=row["target"],
        priority=bool(row["priority"]),
        created_at=iso(row["created_at"]) or "",
    )


def report(row: Row) -> ReportRecord:
    return ReportRecord(
        id=row["id"],
        session_id=row["session_id"],
        task_id=row["task_id"],
        kind=ReportKind(row["kind"]),
        summary=row["summary"],
        artifacts=as_list(row["artifacts"]),
        percent=row["percent"],
        created_at=row["created_at"],
    )
