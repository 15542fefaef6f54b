"""What humans see: one status snapshot of a store, rendered as text (rich) or JSON.

`maestro status` prints it once; `maestro watch` and `maestro demo` re-render it
whenever the store's notifier rings (the same wake-ups the servers use), at most
a few times a second, never by polling fast.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from maestro_mcp.models import Directive, SessionInfo, Task, TaskStatus, ThreadMessage
from maestro_mcp.service import Services
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

    def to_json(self) -> dict[str, Any]:
        return {
            "sessions": [
                {
                    **s.model_dump(mode="json"),
                    "current_task": self.current.get(s.name),
                    "last_report": self.last_report.get(s.name),
                    "unread": self.unread.get(s.name, 0),
                }
                for s in self.sessions
            ],
            "tasks": [t.model_dump(mode="json") for t in self.tasks],
            "messages": [m.model_dump(mode="json") for m in self.messages],
            "directives": [d.model_dump(mode="json") for d in self.directives],
            "counts": self.counts,
        }


async def collect(svc: Services, messages: int = 8) -> Status:
    store = svc.store
    records = await store.list_sessions()
    sessions = await svc.sessions.infos(records)
    tasks = await svc.tasks.views(await store.list_tasks())
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
    )


def _styled(value: str) -> Text:
    return Text(value, style=STATUS_STYLE.get(value, ""))


def render(status: Status, title: str = "maestro") -> RenderableType:
    sessions = Table(expand=True, box=None, pad_edge=False)
    # The short columns keep their width; current task and last report share (and give up) the rest,
    # so a long title is cut with an ellipsis instead of squeezing `unread` out of sight.
    for column, ratio in (
        ("session", None),
        ("role", None),
        ("agent", None),
        ("status", None),
        ("current task", 1),
        ("last report", 1),
        ("unread", None),
    ):
        sessions.add_column(column, overflow="ellipsis", no_wrap=True, ratio=ratio, min_width=4 if ratio else None)
    for s in status.sessions:
        sessions.add_row(
            s.name,
            s.role.value,
            s.agent,
            _styled(s.status.value),
            status.current.get(s.name, ""),
            status.last_report.get(s.name, ""),
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
    parts: list[RenderableType] = [
        Panel(sessions, title="sessions", title_align="left"),
        Panel(plan, title="plan by wave", title_align="left"),
        Panel(mail, title="latest mail and events", title_align="left"),
    ]
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
