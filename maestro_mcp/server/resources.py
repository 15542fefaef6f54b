"""MCP resources, for clients that show them: the plan, a task, a thread, the sessions, as text.

Reading a resource is a look, not a tool call: it registers no session and marks no mail as
delivered (only a tool result shown to its recipient's agent is an honest "delivered").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from maestro_mcp.models import SessionInfo, Task
from maestro_mcp.service import Services

PLAN_URI = "maestro://plan"
SESSIONS_URI = "maestro://sessions"
TASK_URI = "maestro://task/{task_id}"
THREAD_URI = "maestro://thread/{thread_id}"
MARKDOWN = "text/markdown"


def register(mcp: MCPServer[Any], services: Services) -> None:
    @mcp.resource(
        PLAN_URI, name="plan", description="The task DAG by wave, with status and assignee.", mime_type=MARKDOWN
    )
    async def plan() -> str:
        return render_plan(await services.tasks.views(await services.store.list_tasks()))

    @mcp.resource(SESSIONS_URI, name="sessions", description="Every session and its live status.", mime_type=MARKDOWN)
    async def sessions() -> str:
        return render_sessions(await services.sessions.list_infos())

    @mcp.resource(TASK_URI, name="task", description="One task in full.", mime_type=MARKDOWN)
    async def task(task_id: str) -> str:
        record = await services.store.get_task(task_id)
        if record is None:
            raise ResourceNotFoundError(f"No task {task_id!r}: see maestro://plan for task ids.")
        return render_task(await services.tasks.view(record))

    @mcp.resource(THREAD_URI, name="thread", description="A conversation with every receipt.", mime_type=MARKDOWN)
    async def thread(thread_id: str) -> str:
        messages = await services.store.thread(thread_id)
        if not messages:
            raise ResourceNotFoundError(f"No thread {thread_id!r}: a thread id is the id of its first message.")
        lines = [f"# Thread {thread_id}"]
        for m in messages:
            lines += ["", f"## {m.subject or '(no subject)'}", f"{m.message_id} from {m.sender}, {m.created_at}"]
            lines.append(
                f"priority {m.priority.value}, type {m.type.value}" + (f", task {m.task_id}" if m.task_id else "")
            )
            lines += ["", m.body, ""]
            lines += [f"- {r.name}: {r.status.value} {r.acked_at or r.delivered_at or ''}".rstrip() for r in m.receipts]
        return "\n".join(lines) + "\n"


def render_plan(tasks: Sequence[Task]) -> str:
    """Wave 0 needs nothing; wave n waits on earlier waves."""
    if not tasks:
        return "# Plan\n\nNo tasks yet.\n"
    waves: dict[int, list[Task]] = defaultdict(list)
    for t in tasks:
        waves[t.wave].append(t)
    lines = ["# Plan"]
    for wave in sorted(waves):
        lines += ["", f"## Wave {wave}"]
        for t in waves[wave]:
            who = f" @{t.assignee}" if t.assignee else ""
            after = f" (after {', '.join(t.depends_on)})" if t.depends_on else ""
            lines.append(f"- {t.id} [{t.status.value}]{who} {t.title}{after}")
            if t.blocked_reason:
                lines.append(f"  blocked: {t.blocked_reason}")
    return "\n".join(lines) + "\n"


def render_task(t: Task) -> str:
    lines = [f"# {t.title}", "", f"{t.id}" + (f" ({t.key})" if t.key else "") + f", {t.status.value}, wave {t.wave}"]
    if t.assignee:
        lines.append(f"Assignee: {t.assignee}")
    if t.depends_on:
        lines.append(f"Depends on: {', '.join(t.depends_on)}")
    if t.files:
        lines.append(f"Files: {', '.join(t.files)}")
    if t.blocked_reason:
        lines.append(f"Blocked: {t.blocked_reason}")
    for heading, text in (("Description", t.description), ("Acceptance", t.acceptance), ("Result", t.result)):
        if text:
            lines += ["", f"## {heading}", text]
    if t.artifacts:
        lines += ["", "## Artifacts", *[f"- {a}" for a in t.artifacts]]
    return "\n".join(lines) + "\n"


def render_sessions(infos: Sequence[SessionInfo]) -> str:
    if not infos:
        return "# Sessions\n\nNobody yet.\n"
    lines = ["# Sessions", ""]
    for s in infos:
        parent = f", under {s.parent}" if s.parent else ""
        state = "live" if s.live else "ended" + (f" (exit {s.exit_code})" if s.exit_code is not None else "")
        lines.append(f"- {s.name} ({s.role.value}, {s.agent}{parent}): {s.status.value}, {state}")
    return "\n".join(lines) + "\n"
