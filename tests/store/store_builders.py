"""Records the store suites build: sessions, messages and tasks with fresh ids."""

from __future__ import annotations

from typing import Any

from maestro_mcp.ids import new_id
from maestro_mcp.models import (
    MessageType,
    NewMessage,
    NewTask,
    Priority,
    Role,
    SessionRecord,
    SessionStatus,
    TaskStatus,
    now,
)


def session_record(name: str, role: Role = Role.worker, parent_id: str | None = None, **extra: Any) -> SessionRecord:
    ts = now()
    fields: dict[str, Any] = {
        "id": new_id("s"),
        "name": name,
        "role": role,
        "agent": "script",
        "parent_id": parent_id,
        "status": SessionStatus.working,
        "workspace": None,
        "pid": None,
        "created_at": ts,
        "last_seen_at": ts,
    }
    return SessionRecord(**(fields | extra))


def new_message(
    sender: SessionRecord,
    recipients: list[SessionRecord],
    body: str = "hello",
    *,
    priority: Priority = Priority.normal,
    thread_id: str | None = None,
    reply_to: str | None = None,
) -> NewMessage:
    message_id = new_id("m")
    return NewMessage(
        id=message_id,
        thread_id=thread_id or message_id,
        reply_to=reply_to,
        sender_id=sender.id,
        subject="",
        body=body,
        priority=priority,
        type=MessageType.message,
        task_id=None,
        created_at=now(),
        recipient_ids=[r.id for r in recipients],
    )


def task(title: str, *, depends_on: list[NewTask] | None = None, **fields: Any) -> NewTask:
    deps = depends_on or []
    values: dict[str, Any] = {
        "id": new_id("t"),
        "key": title,
        "title": title,
        "description": "",
        "acceptance": "",
        "priority": 0,
        "wave": max((d.wave + 1 for d in deps), default=0),
        "parent_id": None,
        "depends_on": [d.id for d in deps],
        "files": [],
        "assignee_id": None,
        "created_by": None,
        "status": TaskStatus.pending,
        "created_at": now(),
    }
    return NewTask(**(values | fields))
