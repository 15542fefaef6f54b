"""The Store protocol: every backend (SQLite, PostgreSQL) implements exactly this.

Each method is one transaction. Invariants that need atomicity (receipts,
claims, name uniqueness) are conditional updates inside the backend; policy
(who may do what, what a target means) lives in `maestro_mcp.service`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

import anyio.abc

from maestro_mcp.models import (
    ClaimOutcome,
    Directive,
    Message,
    NewMessage,
    NewTask,
    ReportRecord,
    Role,
    SessionRecord,
    SessionStatus,
    TaskChange,
    TaskRecord,
    TaskStatus,
    ThreadMessage,
    Unread,
)

from .notify import Subscription

# Every table a snapshot holds, parents before children. Both backends use these names and columns.
TABLES = ("sessions", "messages", "receipts", "directives", "tasks", "task_deps", "reports")


class Store(Protocol):
    """All state of one project, shared by every agent of it."""

    location: str
    """Path or URL (password redacted) of the store, for messages."""

    async def open(self) -> None:
        """Connect, create or migrate the schema (safe when several processes race)."""

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    async def health(self) -> dict[str, str]:
        """For `maestro doctor`: `backend`, `integrity` ("ok" or the problems found) and backend details."""

    # -- wake-ups -------------------------------------------------------------
    def subscribe(self, topic: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """Subscribe before checking the store; the subscription rings on the next commit of `topic`."""

    async def wake(self, topics: Sequence[str]) -> None:
        """Ring `topics` in every process without writing anything (used by `maestro doctor`)."""

    async def listen(self, owner: str, task_group: anyio.abc.TaskGroup) -> None:
        """Hear wake-ups committed by other processes for `owner` (a session id, or "*")."""

    # -- sessions -------------------------------------------------------------
    async def create_session(self, record: SessionRecord) -> SessionRecord:
        """Insert a session; raises `Conflict` when its name is taken."""

    async def get_session(self, key: str) -> SessionRecord | None:
        """A session by id or by name."""

    async def session_by_token_hash(self, token_hash: str) -> SessionRecord | None:
        """The session holding this token (HTTP bearer authentication)."""

    async def set_token_hash(self, session_id: str, token_hash: str | None) -> bool:
        """Replace (or with None, revoke) a session's token. False when the session does not exist."""

    async def list_sessions(
        self,
        *,
        role: Role | None = None,
        status: SessionStatus | None = None,
        parent_id: str | None = None,
        live: bool | None = None,
    ) -> list[SessionRecord]: ...

    async def set_session_status(self, session_id: str, status: SessionStatus) -> SessionRecord | None:
        """Set the status of a live session; None when it has ended."""

    async def touch_session(self, session_id: str, pid: int | None = None) -> None:
        """Record activity (and the serving pid) of a session."""

    async def set_process(self, session_id: str, pid: int, spawner_pid: int | None, log_path: str | None) -> None:
        """Record the agent process of a spawned session, the process watching it, and its log."""

    async def set_exit_code(self, session_id: str, exit_code: int, status: SessionStatus) -> None:
        """Complete an ended session's record with the exit code its spawner observed."""

    async def revive_session(self, session_id: str, status: SessionStatus, pid: int | None) -> SessionRecord:
        """A resumed session is live again: clear its end, set status and pid."""

    async def end_session(self, session_id: str, status: SessionStatus, exit_code: int | None) -> SessionRecord | None:
        """End a live session. Returns the record only if this call ended it (exactly one caller wins)."""

    # -- mail -----------------------------------------------------------------
    async def insert_message(self, message: NewMessage) -> None:
        """Store a message and one `sent` receipt per recipient, then ring the recipients."""

    async def get_message(self, message_id: str) -> Message | None: ...

    async def thread_exists(self, thread_id: str) -> bool: ...

    async def unread(self, session_id: str) -> Unread: ...

    async def take_unread(self, session_id: str, limit: int) -> tuple[list[Message], int]:
        """Return up to `limit` unread messages (critical first, then oldest) marked `delivered`,
        and how many unread remain. Each message is taken by exactly one caller."""

    async def recent_read(self, session_id: str, limit: int) -> list[Message]:
        """Messages already delivered to the session, newest first."""

    async def thread(self, thread_id: str) -> list[ThreadMessage]: ...

    async def mark_thread_delivered(self, thread_id: str, session_id: str) -> int:
        """The session was shown the whole thread: its `sent` receipts in it become `delivered`."""

    async def ack(self, session_id: str, message_ids: Sequence[str]) -> list[str]:
        """Mark the session's receipts `acked`. Unknown ids raise `NotFound` and ids not addressed
        to the session raise `Forbidden`; in both cases nothing is changed."""

    async def recent_messages(self, limit: int) -> list[ThreadMessage]:
        """The newest messages of the whole project (newest first), with receipts: for humans watching."""

    async def counts(self) -> dict[str, int]:
        """Totals for summaries: messages, receipts per status (`sent`, `delivered`, `acked`), reports."""

    # -- directives -----------------------------------------------------------
    async def active_directives(self, session_id: str) -> list[Directive]: ...

    async def add_directive(
        self, directive_id: str, text: str, target_id: str | None, priority: bool, created_by: str | None
    ) -> None: ...

    async def clear_directives(self, directive_id: str | None) -> int:
        """Clear one directive (or, with None, every active one); returns how many were cleared."""

    async def all_directives(self) -> list[Directive]:
        """Active directives concerning anyone, oldest first."""

    # -- snapshots ------------------------------------------------------------
    async def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every table (see TABLES), in insertion order, in one consistent read."""

    async def restore(self, tables: dict[str, list[dict[str, Any]]], *, replace: bool) -> None:
        """Load a dump in one transaction. Without `replace` the store must be empty (`Conflict`);
        with it, everything in the store is replaced."""

    async def is_empty(self) -> bool: ...

    # -- tasks ----------------------------------------------------------------
    async def create_tasks(self, tasks: Sequence[NewTask]) -> list[TaskRecord]:
        """Insert a whole batch (with its dependency edges) in one transaction, or nothing.
        The service has already checked keys, cycles and that every dependency exists."""

    async def get_task(self, task_id: str) -> TaskRecord | None: ...

    async def get_tasks(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]: ...

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        assignee_id: str | None = None,
        parent_id: str | None = None,
    ) -> list[TaskRecord]:
        """Ordered by wave, then priority (high first), then age."""

    async def ready_tasks(self, session_id: str, limit: int) -> list[TaskRecord]:
        """Ready tasks the session may take (unassigned, or assigned to it): priority, then age."""

    async def claim_task(self, session_id: str, limit: int) -> ClaimOutcome:
        """Atomically move the first claimable ready task to in_progress, assigned to the session.
        Skips a task whose declared files overlap those of a task in progress by another session.
        With any number of concurrent claimers, each task goes to exactly one."""

    async def update_task(
        self,
        task_id: str,
        *,
        expect: TaskStatus,
        status: TaskStatus | None = None,
        result: str | None = None,
        artifacts: Sequence[str] | None = None,
        assignee_id: str | None = None,
        unassign: bool = False,
        blocked_reason: str | None = None,
    ) -> TaskChange:
        """Conditional update: applies only while the task is still `expect` (else `Conflict`).
        A task reaching done readies its dependents whose dependencies are all done; one reaching
        failed or cancelled blocks its pending dependents; one going back to ready (a retry)
        unblocks them."""

    async def release_tasks(self, session_id: str, max_attempts: int) -> list[TaskRecord]:
        """The session has ended: its in_progress tasks go back to ready (failed once they have
        been attempted `max_attempts` times). Returns the released tasks as they now are."""

    async def add_report(self, report: ReportRecord, status: SessionStatus | None) -> None:
        """Append to the session's timeline and set its status, in one transaction."""

    async def reports(
        self, *, session_id: str | None = None, task_id: str | None = None, limit: int = 50
    ) -> list[ReportRecord]:
        """Newest first."""
