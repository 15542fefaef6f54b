"""Tool result models. Field names follow the contract in shared/DESIGN.md."""

from __future__ import annotations

from pydantic import Field

from maestro_mcp.models import Directive, Message, Model, SessionInfo, ThreadMessage, Unread


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
    tasks: list[dict[str, object]] = Field(description="Tasks assigned to you.")
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
