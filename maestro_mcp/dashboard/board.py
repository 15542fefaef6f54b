"""What the dashboard shows, read from the store: the board (the whole team) and one worker's page.

The board is `view.collect` (what `maestro status` shows: current actions and spend included) plus
mail grouped into threads and the plan's picture; a worker's page adds its activity stream and
cost (what `maestro logs` shows), its reports, its tasks, its mail and the tail of its raw log.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from maestro_mcp.activity import Redactor
from maestro_mcp.config import STORE_DIR, project_root_for
from maestro_mcp.models import (
    ActivityEvent,
    ApprovalStatus,
    ReportRecord,
    SessionInfo,
    SessionRecord,
    SessionStats,
    Task,
    ThreadMessage,
    iso,
    now,
)
from maestro_mcp.service import Services
from maestro_mcp.view import Status, collect

from .plan import Picture, layout

BOARD_MESSAGES = 40
WORKER_MESSAGES = 300
"""Newest messages of the project searched for a worker's own mail."""
LOG_TAIL_BYTES = 16 * 1024
ACTIVITY_EVENTS = 200


@dataclass
class Thread:
    thread_id: str
    subject: str
    messages: list[ThreadMessage]
    """Oldest first, as a conversation reads."""


@dataclass
class Board:
    status: Status
    threads: list[Thread]
    plan: Picture
    ids: dict[str, str]
    """Session name -> id, for links to the workers' pages."""
    generated_at: str

    @property
    def message_ids(self) -> list[str]:
        return [m.message_id for m in self.status.messages]


def threads_of(messages: list[ThreadMessage]) -> list[Thread]:
    """Messages (newest first) grouped by thread, the thread with the newest message first."""
    grouped: OrderedDict[str, list[ThreadMessage]] = OrderedDict()
    for m in messages:
        grouped.setdefault(m.thread_id, []).append(m)
    out = []
    for thread_id, found in grouped.items():
        found.reverse()
        subject = next((m.subject for m in found if m.subject), found[0].body[:60])
        out.append(Thread(thread_id, subject, found))
    return out


async def board(svc: Services) -> Board:
    status = await collect(svc, messages=BOARD_MESSAGES)
    return Board(
        status=status,
        threads=threads_of(status.messages),
        plan=layout(status.tasks),
        ids={s.name: s.session_id for s in status.sessions},
        generated_at=iso(now()) or "",
    )


@dataclass
class WorkerPage:
    record: SessionRecord
    info: SessionInfo
    parent: str | None
    reports: list[ReportRecord]
    tasks: list[Task]
    threads: list[Thread]
    unread: int
    log_tail: str | None
    log_note: str
    stats: SessionStats | None = None
    activity: list[ActivityEvent] = field(default_factory=list)
    """The newest events of its activity stream (what `maestro logs` shows), oldest first."""
    doing: str = ""
    doing_at: float | None = None
    task_titles: dict[str, str] = field(default_factory=dict)


async def worker_page(svc: Services, session_id: str) -> WorkerPage | None:
    store = svc.store
    record = await store.get_session(session_id)
    if record is None:
        return None
    info = (await svc.sessions.infos([record]))[0]
    tasks = await svc.tasks.views(await store.list_tasks(assignee_id=record.id))
    reports = await store.reports(session_id=record.id, limit=50)
    mine = [
        m
        for m in await store.recent_messages(WORKER_MESSAGES)
        if m.sender == record.name or any(r.session_id == record.id for r in m.receipts)
    ]
    tail, note = await log_tail(store.location, record.log_path)
    titles = {t.id: t.title for t in await svc.tasks.views(await store.list_tasks())}
    stats = (await store.session_stats([record.id])).get(record.id)
    waiting = await store.list_approvals(status=ApprovalStatus.pending, session_id=record.id)
    if not record.live:
        doing, doing_at = "", None
    elif waiting:
        doing, doing_at = f"waiting for approval: {waiting[0].tool}", waiting[0].created_at
    else:
        doing, doing_at = (stats.doing or "", stats.doing_at) if stats is not None else ("", None)
    return WorkerPage(
        record=record,
        info=info,
        parent=info.parent,
        reports=reports,
        tasks=tasks,
        threads=threads_of(mine),
        unread=(await store.unread(record.id)).count,
        log_tail=tail,
        log_note=note,
        stats=stats,
        activity=await store.last_activity(record.id, ACTIVITY_EVENTS),
        doing=doing,
        doing_at=doing_at,
        task_titles=titles,
    )


async def log_tail(location: str, log_path: str | None) -> tuple[str | None, str]:
    """The last lines of a worker's log, with secrets redacted; or None and why not."""
    if not log_path:
        return None, "This session has no log: it was not started by spawn_worker or maestro launch."
    path = Path(log_path)
    root = project_root_for(location)
    try:
        resolved = await anyio.to_thread.run_sync(path.resolve)
    except OSError:
        return None, f"Its log {log_path} cannot be read."
    # A log path comes from the store, which agents write: never read a file outside the project's .maestro/.
    if not resolved.is_relative_to((root / STORE_DIR).resolve()):
        return None, f"Its log {log_path} is outside this project's {STORE_DIR}/; not shown."
    try:
        data = await anyio.to_thread.run_sync(_read_tail, resolved)
    except OSError as exc:
        return None, f"Its log {log_path} cannot be read: {exc.strerror or exc}."
    return Redactor(os.environ)(data), f"The last {LOG_TAIL_BYTES // 1024} KiB of {log_path}."


def _read_tail(path: Path) -> str:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(size - LOG_TAIL_BYTES, 0))
        data = f.read()
    text = data.decode("utf-8", "replace")
    if size > LOG_TAIL_BYTES and "\n" in text:
        text = text.split("\n", 1)[1]  # the first line was cut in the middle
    return text
