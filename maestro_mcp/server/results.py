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
        description="False when your coordinator has ended: finish your task, report, and stop."
    )
    siblings: list[SessionInfo]
    tasks: list[Task] = Field(description="Tasks assigned to you that are not finished.")
    directive: str | None = Field(default=None, description="What your coordinator spawned you for.")
    directives: list[Directive] = Field(description="Active operator steering: follow it.")


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
    tasks: list[Task] = Field(description="Ready tasks you may take (after the claimed one, if any).")
    claimed: Task | None = Field(description="The task now assigned to you and in progress, or null.")
    skipped: list[str] = Field(default_factory=list, description="Ready tasks passed over, and why.")


class TaskList(Result):
    tasks: list[Task]


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
