"""report_progress: a session's timeline, its status, and the reports that must reach the coordinator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from maestro_mcp.errors import InvalidArgument
from maestro_mcp.ids import new_id
from maestro_mcp.models import (
    Priority,
    ReportKind,
    ReportRecord,
    SessionRecord,
    SessionStatus,
    TaskRecord,
    TaskStatus,
    now,
)
from maestro_mcp.service import limits
from maestro_mcp.service.mail import MailService
from maestro_mcp.service.tasks import TaskService
from maestro_mcp.store import Store

MAX_SUMMARY = 16 * 1024

SESSION_STATUS = {
    ReportKind.progress: SessionStatus.working,
    ReportKind.complete: SessionStatus.done,
    ReportKind.blocked: SessionStatus.blocked,
    ReportKind.needs_input: SessionStatus.needs_input,
    ReportKind.failed: SessionStatus.failed,
}
# What a report does to the task it names, when that task is the reporter's and in progress.
TASK_STATUS = {
    ReportKind.complete: TaskStatus.done,
    ReportKind.failed: TaskStatus.failed,
    ReportKind.blocked: TaskStatus.blocked,
}
# Reports that say the reporter is working on its blocked task again.
RESUMES = {ReportKind.progress, ReportKind.complete}
TELL_PARENT = {
    ReportKind.complete: Priority.normal,
    ReportKind.blocked: Priority.high,
    ReportKind.needs_input: Priority.high,
    ReportKind.failed: Priority.high,
}


@dataclass(frozen=True)
class Reported:
    report: ReportRecord
    task: TaskRecord | None
    notified: str | None
    """Name of the session that got an event mail about it, if any."""


class ReportService:
    def __init__(self, store: Store, mail: MailService, tasks: TaskService) -> None:
        self.store = store
        self.mail = mail
        self.tasks = tasks

    async def _only_task(self, caller: SessionRecord, kind: ReportKind) -> TaskRecord | None:
        """The task a complete / failed / blocked report without task_id is about: the caller's one task in
        progress (none: the report is about the session itself, as a worker's last "complete" is)."""
        if kind not in TASK_STATUS:
            return None
        mine = await self.store.list_tasks(assignee_id=caller.id, status=TaskStatus.in_progress)
        if len(mine) > 1:
            raise InvalidArgument(
                f"You have {len(mine)} tasks in progress: {', '.join(f'{t.id} ({t.title})' for t in mine)}.",
                f"Say which one with task_id to report it {kind.value}.",
            )
        return mine[0] if mine else None

    async def report(
        self,
        caller: SessionRecord,
        kind: ReportKind,
        summary: str,
        *,
        task_id: str | None = None,
        artifacts: Sequence[str] | None = None,
        percent: float | None = None,
    ) -> Reported:
        if not summary.strip():
            raise InvalidArgument("The summary is empty.", "Say in a sentence what happened.")
        limits.text("summary", summary, MAX_SUMMARY)
        limits.items("artifacts", artifacts or [])
        if percent is not None and not 0 <= percent <= 100:
            raise InvalidArgument(f"percent={percent} is out of range.", "Use 0 to 100.")
        task = await self.tasks.get(task_id) if task_id else await self._only_task(caller, kind)
        if task is not None and kind in RESUMES and task.status is TaskStatus.blocked and task.assignee_id == caller.id:
            # The worker was unblocked (by mail, usually) and carries on: its task is in progress again.
            task = (await self.tasks.update(caller, task.id, status=TaskStatus.in_progress)).task
        new_status = TASK_STATUS.get(kind)
        if task is not None and new_status is not None and task.status is not new_status:
            # Validates ownership and the transition before anything is written.
            change = await self.tasks.update(
                caller, task.id, status=new_status, result=summary, artifacts=list(artifacts or []) or None
            )
            task = change.task
        record = ReportRecord(
            id=new_id("r"),
            session_id=caller.id,
            task_id=task.id if task else None,
            kind=kind,
            summary=summary,
            artifacts=list(artifacts or []),
            percent=percent,
            created_at=now(),
        )
        # A session asked to stop stays `stopped` whatever it reports on its way out (the store sees to it).
        await self.store.add_report(record, SESSION_STATUS[kind])
        notified = await self._tell_parent(caller, record, task)
        return Reported(record, task, notified)

    async def _tell_parent(self, caller: SessionRecord, report: ReportRecord, task: TaskRecord | None) -> str | None:
        priority = TELL_PARENT.get(report.kind)
        if priority is None or caller.parent_id is None:
            return None
        parent = await self.store.get_session(caller.parent_id)
        if parent is None or not parent.live:
            return None
        about = f" {task.id} ({task.title})" if task else ""
        body = f"{caller.name} reports {report.kind.value}{about}: {report.summary}"
        if report.artifacts:
            body += "\nArtifacts: " + ", ".join(report.artifacts)
        await self.mail.send_event(
            caller,
            [parent],
            f"{caller.name}: {report.kind.value}{about}",
            body,
            priority=priority,
            task_id=task.id if task else None,
        )
        return parent.name

    async def note(self, caller: SessionRecord, task_id: str, note: str) -> None:
        """A remark on a task's timeline (task_update's `note`); it changes no status."""
        limits.text("note", note, MAX_SUMMARY)
        record = ReportRecord(
            id=new_id("r"),
            session_id=caller.id,
            task_id=task_id,
            kind=ReportKind.progress,
            summary=note,
            artifacts=[],
            percent=None,
            created_at=now(),
        )
        await self.store.add_report(record, None)
