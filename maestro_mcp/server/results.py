"""Tool result models. Field names follow the contract in shared/DESIGN.md."""

from __future__ import annotations

from pydantic import Field

from maestro_mcp.models import Directive, Message, Model, SessionInfo, Task, TaskStatus, ThreadMessage, Unread


class Result(Model):
    unread: Unread = Field(description="Your unread mail: read it with mail_inbox when `urgent` is true.")


class WhoAmI(Result):
    session_id: str
    name: str
    role: str
    agent: str
    parent: str | None
    coordinator: str | None = Field(description="Name of the coordinator you report to (null for a root).")
    coordinator_live: bool | None = Field(
        description="False when your coordinator has ended or gone silent: finish your task and report."
    )
    siblings: list[SessionInfo]
    tasks: list[Task] = Field(description="Tasks assigned to you that are not finished.")
    directive: str | None = Field(default=None, description="What your coordinator spawned you for.")
    directives: list[Directive] = Field(description="Active operator steering: follow it.")
    team_spend_usd: float | None = Field(default=None, description="Coordinator: your team's spend so far.")


class Sessions(Result):
    sessions: list[SessionInfo]


class Sent(Result):
    message_id: str
    thread_id: str
    recipients: list[str] = Field(description="Names of the sessions that got a receipt.")
    warnings: list[str] = Field(default_factory=list)


class Inbox(Result):
    messages: list[Message]
    remaining: int = Field(description="Unread messages not returned by this call.")


class Waited(Result):
    messages: list[Message]
    timed_out: bool


class Thread(Result):
    messages: list[ThreadMessage]


class Acked(Result):
    acked: list[str]


class CreatedTask(Model):
    id: str
    key: str | None
    status: TaskStatus
    wave: int


class Created(Result):
    tasks: list[CreatedTask] = Field(description="In the order given, with the ids to use from now on.")


class ReadyTasks(Result):
    tasks: list[TaskBrief] = Field(description="Ready tasks you may take (after the claimed one, if any).")
    claimed: Task | None = Field(description="The task now assigned to you and in progress, or null.")
    skipped: list[str] = Field(default_factory=list, description="Ready tasks passed over, and why.")


class TaskBrief(Model):
    """A task in a list: enough to choose one; task_get shows it whole."""

    id: str
    key: str | None
    title: str
    status: TaskStatus
    wave: int
    assignee: str | None = Field(description="Name of the session working on it.")
    depends_on: list[str]
    files: list[str] = Field(description="What it will change: two tasks sharing a file do not run at once.")
    blocked_reason: str | None = Field(default=None, description="Why it is blocked, when it is.")

    @classmethod
    def of(cls, task: Task) -> TaskBrief:
        return cls(
            id=task.id,
            key=task.key,
            title=task.title,
            status=task.status,
            wave=task.wave,
            assignee=task.assignee,
            depends_on=task.depends_on,
            files=task.files,
            blocked_reason=task.blocked_reason,
        )


class TaskList(Result):
    tasks: list[TaskBrief]
    more: int = Field(description="Tasks past the limit: narrow with status, assignee or parent_id.")


class OneTask(Result):
    task: Task


class Updated(Result):
    task: Task
    now_ready: list[str] = Field(default_factory=list, description="Ids of dependents this made ready.")
    now_blocked: list[str] = Field(default_factory=list, description="Ids of dependents this blocked.")


class ReportResult(Result):
    report_id: str
    task: Task | None
    notified: str | None = Field(description="Who got an event mail about this report.")


class Spawned(Result):
    session_id: str
    name: str
    status: str
    pid: int
    log_path: str = Field(description="Where the worker's output goes.")


class Stopped(Result):
    session_id: str
    status: str


class Approval(Model):
    request_id: str
    session_id: str
    name: str = Field(description="The worker asking.")
    tool: str = Field(description="The tool as the worker's CLI names it.")
    input: str = Field(description="What it would do (truncated text).")
    reason: str = Field(description="Why it asks: what the policy said.")
    created_at: str
    expires_at: str = Field(description="When it is denied if nobody answers.")


class Approvals(Result):
    approvals: list[Approval]


class Decided(Result):
    request_id: str
    decision: str = Field(description="allowed or denied.")
    rule: str | None = Field(default=None, description="The rule remembered for your team, with remember=true.")


class StateSet(Result):
    key: str
    version: int


class StateValue(Result):
    key: str
    value: str | None = Field(description="JSON text.")
    version: int
    set_by: str | None
    set_at: str | None
    changed: bool = Field(description="False: the wait ended with no version above after_version.")
