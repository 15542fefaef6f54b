"""The Store protocol: every backend (SQLite, PostgreSQL) implements exactly this.

Each method is one transaction. Invariants that need atomicity (receipts,
claims, name uniqueness) are conditional updates inside the backend; policy
(who may do what, what a target means) lives in `maestro_mcp.service`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Protocol

import anyio.abc

from maestro_mcp.models import (
    Directive,
    Message,
    NewMessage,
    Role,
    SessionRecord,
    SessionStatus,
    ThreadMessage,
    Unread,
)

from .notify import Subscription


class Store(Protocol):
    """All state of one project, shared by every agent of it."""

    location: str
    """Path or URL (password redacted) of the store, for messages."""

    async def open(self) -> None:
        """Connect, create or migrate the schema (safe when several processes race)."""

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    # -- wake-ups -------------------------------------------------------------
    def subscribe(self, topic: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """Subscribe before checking the store; the subscription rings on the next commit of `topic`."""

    async def listen(self, owner: str, task_group: anyio.abc.TaskGroup) -> None:
        """Hear wake-ups committed by other processes for `owner` (a session id, or "*")."""

    # -- sessions -------------------------------------------------------------
    async def create_session(self, record: SessionRecord) -> SessionRecord:
        """Insert a session; raises `Conflict` when its name is taken."""

    async def get_session(self, key: str) -> SessionRecord | None:
        """A session by id or by name."""

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

    # -- directives -----------------------------------------------------------
    async def active_directives(self, session_id: str) -> list[Directive]: ...
