"""What humans see: one status snapshot of a store, rendered as text (rich) or JSON.

`maestro status` prints it once; `maestro watch` and `maestro demo` re-render it
whenever the store's notifier rings (the same wake-ups the servers use), at most
a few times a second, never by polling fast.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from maestro_mcp.models import (
    ApprovalRecord,
    ApprovalStatus,
    Directive,
    SessionInfo,
    SessionStats,
    Task,
    TaskStatus,
    ThreadMessage,
    Usage,
    iso,
    now,
)
from maestro_mcp.service import Services
from maestro_mcp.service.activity import ago, money
from maestro_mcp.store import ALL

STATUS_STYLE = {
    "working": "green",
    "spawning": "yellow",
    "idle": "white",
    "blocked": "red",
    "needs_input": "magenta",
    "done": "cyan",
    "failed": "bold red",
    "exited": "dim",
    "stopped": "dim",
    "pending": "dim",
    "ready": "yellow",
    "in_progress": "green",
    "cancelled": "dim",
}


@dataclass
class Status:
    sessions: list[SessionInfo]
    current: dict[str, str]
    last_report: dict[str, str]
    unread: dict[str, int]
    tasks: list[Task]
    messages: list[ThreadMessage]
    directives: list[Directive]
    counts: dict[str, int]
    approvals: list[ApprovalRecord] = field(default_factory=list)
    """Permission requests waiting for an answer (`maestro approve ID` / `maestro deny ID`)."""
    stats: dict[str, SessionStats] = field(default_factory=dict)
    """By session name: activity, usage and limits (sessions with neither are absent)."""
    task_usage: dict[str, Usage] = field(default_factory=dict)
    """By task id: what its workers spent on it."""
    at: float = field(default_factory=now)

    def doing(self, name: str) -> tuple[str, float | None]:
        """A live session's current action and since when: waiting for an approval, else its last tool call."""
        session = next((s for s in self.sessions if s.name == name), None)
        if session is None or not session.live:
            return "", None
        waiting = [a for a in self.approvals if self.names.get(a.session_id) == name]
        if waiting:
            return f"waiting for approval: {waiting[0].tool}", waiting[0].created_at
        stats = self.stats.get(name)
        if stats is None or not stats.doing:
            return "", None
        return stats.doing, stats.doing_at

    def _doing_json(self, name: str) -> dict[str, str | None]:
        doing, since = self.doing(name)
        return {"doing": doing or None, "doing_since": iso(since)}

    def spend(self, name: str) -> Usage:
        stats = self.stats.get(name)
        return stats.usage if stats else Usage()

    @property
    def total(self) -> Usage:
        total = Usage()
        for stats in self.stats.values():
            total = total + stats.usage
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "sessions": [
                {
                    **s.model_dump(mode="json"),
                    "current_task": self.current.get(s.name),
                    "last_report": self.last_report.get(s.name),
                    "unread": self.unread.get(s.name, 0),
                    **self._doing_json(s.name),
                    "usage": self.spend(s.name).model_dump(mode="json"),
                    "budget_usd": self.stats[s.name].budget_usd if s.name in self.stats else None,
                    "events": self.stats[s.name].events if s.name in self.stats else 0,
                }
                for s in self.sessions
            ],
            "tasks": [
                {**t.model_dump(mode="json"), "usage": self.task_usage.get(t.id, Usage()).model_dump(mode="json")}
                for t in self.tasks
            ],
            "usage": self.total.model_dump(mode="json"),
            "messages": [m.model_dump(mode="json") for m in self.messages],
            "directives": [d.model_dump(mode="json") for d in self.directives],
            "approvals": [
                {
                    "request_id": a.id,
                    "session_id": a.session_id,
                    "name": self.names.get(a.session_id, a.session_id),
                    "tool": a.tool,
                    "input": a.input,
                    "reason": a.reason,
                    "created_at": iso(a.created_at),
                    "expires_at": iso(a.expires_at),
                }
                for a in self.approvals
            ],
            "counts": self.counts,
        }

    @property
    def names(self) -> dict[str, str]:
        return {s.session_id: s.name for s in self.sessions}


async def collect(svc: Services, messages: int = 8) -> Status:
    store = svc.store
    records = await store.list_sessions()
    sessions = await svc.sessions.infos(records)
    tasks = await svc.tasks.views(await store.list_tasks())
    by_id = {r.id: r.name for r in records}
    per_task: dict[str, Usage] = {}
    for spent in await store.task_usage():
        per_task[spent.task_id] = per_task.get(spent.task_id, Usage()) + spent.usage
    current = {t.assignee: f"{t.id} {t.title}" for t in tasks if t.status is TaskStatus.in_progress and t.assignee}
    last_report: dict[str, str] = {}
    unread: dict[str, int] = {}
    for record in records:
        report = await store.reports(session_id=record.id, limit=1)
        if report:
            last_report[record.name] = f"{report[0].kind.value}: {report[0].summary}"
        unread[record.name] = (await store.unread(record.id)).count
    return Status(
        sessions=sessions,
        current=current,
        last_report=last_report,
        unread=unread,
        tasks=tasks,
        messages=await store.recent_messages(messages),
        directives=await store.all_directives(),
        counts=await store.counts(),
        approvals=await store.list_approvals(status=ApprovalStatus.pending),
        stats={by_id[sid]: st for sid, st in (await store.session_stats()).items() if sid in by_id},
        task_usage=per_task,
    )


def _doing(status: Status, name: str) -> str:
    doing, since = status.doing(name)
    return f"{doing} ({ago(since, status.at)})" if doing and since else doing


def _spend(status: Status, name: str) -> str:
    stats = status.stats.get(name)
    if stats is None:
        return ""
    shown = money(stats.usage) if not stats.usage.empty else ""
    if stats.budget_usd is not None:
        shown = f"{shown or '$0.00'}/${stats.budget_usd:.2f}"
    return shown


def _styled(value: str) -> Text:
    return Text(value, style=STATUS_STYLE.get(value, ""))


def render(status: Status, title: str = "maestro") -> RenderableType:
    sessions = Table(expand=True, box=None, pad_edge=False)
    # The short columns keep their width; current task and last report share (and give up) the rest,
    # so a long title is cut with an ellipsis instead of squeezing `unread` out of sight.
    # What workers do and spend, only when there is something to show (script agents report neither).
    doing = any(status.doing(s.name)[0] for s in status.sessions)
    spend = any(_spend(status, s.name) for s in status.sessions)
    columns = [
        ("session", None),
        ("role", None),
        ("agent", None),
        ("status", None),
        ("current task", 1),
        *([("doing", 1)] if doing else []),
        ("last report", 1),
        *([("spend", None)] if spend else []),
        ("unread", None),
    ]
    for column, ratio in columns:
        sessions.add_column(column, overflow="ellipsis", no_wrap=True, ratio=ratio, min_width=4 if ratio else None)
    for s in status.sessions:
        sessions.add_row(
            s.name,
            s.role.value,
            s.agent,
            _styled(s.status.value),
            status.current.get(s.name, ""),
            *([_doing(status, s.name)] if doing else []),
            status.last_report.get(s.name, ""),
            *([_spend(status, s.name)] if spend else []),
            str(status.unread.get(s.name, 0) or ""),
        )
    waves: dict[int, list[Task]] = defaultdict(list)
    for task in status.tasks:
        waves[task.wave].append(task)
    plan = Table(expand=True, box=None, pad_edge=False, show_header=False)
    plan.add_column("wave", no_wrap=True)
    plan.add_column("tasks", ratio=1)
    for wave in sorted(waves):
        line = Text()
        for task in waves[wave]:
            line.append(f"{task.key or task.id}", style=STATUS_STYLE.get(task.status.value, ""))
            line.append(f" [{task.status.value}{' @' + task.assignee if task.assignee else ''}]  ", style="dim")
        plan.add_row(f"wave {wave}", line)
    mail = Table(expand=True, box=None, pad_edge=False, show_header=False)
    mail.add_column("mail", overflow="ellipsis", no_wrap=True)
    for m in status.messages:
        to = ", ".join(f"{r.name}:{r.status.value}" for r in m.receipts)
        style = "bold" if m.priority.value in ("critical", "high") else ""
        mail.add_row(Text(f"[{m.type.value}] {m.sender} → {to}: {m.subject or m.body}", style=style))
    c = status.counts
    done = sum(1 for t in status.tasks if t.status is TaskStatus.done)
    footer = (
        f"tasks {done}/{len(status.tasks)} done · messages {c.get('messages', 0)} "
        f"(delivered {c.get('delivered', 0) + c.get('acked', 0)}, acked {c.get('acked', 0)}, "
        f"unread {c.get('sent', 0)}) · reports {c.get('reports', 0)}"
    )
    if not status.total.empty:
        estimated = " (~: estimated from token prices)" if status.total.cost_estimated else ""
        footer += f" · spend {money(status.total)}{estimated}"
    parts: list[RenderableType] = [
        Panel(sessions, title="sessions", title_align="left"),
        Panel(plan, title="plan by wave", title_align="left"),
        Panel(mail, title="latest mail and events", title_align="left"),
    ]
    if status.approvals:
        waiting = Table(expand=True, box=None, pad_edge=False, show_header=False)
        waiting.add_column("request", overflow="ellipsis", no_wrap=True)
        for a in status.approvals:
            who = status.names.get(a.session_id, a.session_id)
            waiting.add_row(Text(f"{a.id} {who} · {a.tool}: {a.input}", style="magenta"))
        title = "waiting for approval (maestro approve ID / maestro deny ID --reason …)"
        parts.append(Panel(waiting, title=title, title_align="left"))
    if status.directives:
        steering = "\n".join(f"{d.directive_id} → {d.to or 'all'}: {d.text}" for d in status.directives)
        parts.append(Panel(steering, title="operator steering", title_align="left"))
    parts.append(Text(footer, style="dim"))
    return Panel(Group(*parts), title=title, title_align="left")


async def follow(
    svc: Services,
    show: Callable[[Status], None],
    *,
    until: anyio.Event | None = None,
    refresh_s: float = 5.0,
    pace_s: float = 0.1,
) -> None:
    """Show the status now and again after every store change, until `until` is set (or forever).

    Wake-ups come from the store's notifier (start `store.listen(ALL, ...)` to hear other processes);
    `refresh_s` only keeps ages current when nothing happens, and `pace_s` caps redraws at a few a second.
    """
    async with svc.store.subscribe(ALL) as bell:
        while True:
            show(await collect(svc))
            if until is not None and until.is_set():
                return
            await bell.wait(refresh_s)
            await anyio.sleep(pace_s)
