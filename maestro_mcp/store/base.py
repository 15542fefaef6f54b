"""The Store protocol: every backend (SQLite, PostgreSQL) implements exactly this.

Each method is one transaction. Invariants that need atomicity (receipts,
claims, name uniqueness) are conditional updates inside the backend; policy
(who may do what, what a target means) lives in `maestro_mcp.service`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import anyio.abc

from maestro_mcp.models import (
    ActivityBatch,
    ActivityEvent,
    ApprovalRecord,
    ApprovalStatus,
    ClaimOutcome,
    Directive,
    Message,
    NewMessage,
    NewTask,
    ReportRecord,
    Role,
    SessionEnding,
    SessionOverview,
    SessionRecord,
    SessionStats,
    SessionStatus,
    StateEntry,
    StateWrite,
    TaskChange,
    TaskRecord,
    TaskStatus,
    TaskUsage,
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

    async def health(self) -> dict[str, str]:
        """For `maestro doctor`: `backend`, `integrity` ("ok" or the problems found), `notifier` (how
        wake-ups travel) and `notifier_fix` (what to check when they do not), then backend details."""

    # -- wake-ups -------------------------------------------------------------
    def subscribe(self, topic: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """Subscribe before checking the store; the subscription rings on the next commit of `topic`."""

    async def wake(self, topics: Sequence[str]) -> None:
        """Ring `topics` in every process without writing anything (used by `maestro doctor`)."""

    async def listen(self, owner: str, task_group: anyio.abc.TaskGroup) -> None:
        """Hear wake-ups committed by other processes for `owner` (a session id, or "*")."""

    # -- sessions -------------------------------------------------------------
    async def create_session(self, record: SessionRecord, reserve: Sequence[TaskRecord] = ()) -> SessionRecord:
        """Insert a session, with the tasks in `reserve` reserved for it, in one transaction: `Conflict`
        when its name is taken, or when one of the tasks is no longer as the caller read it (its
        status, its assignee), and then nothing is written."""

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

    async def heartbeat(self, session_id: str, host: str) -> bool:
        """A live session's serve process is alive on `host`; False when the session has ended."""

    async def liveness_suspects(self, host: str, expired: float) -> list[SessionRecord]:
        """Live sessions with a heartbeat that are on `host` or whose heartbeat is older than `expired`."""

    async def set_process(self, session_id: str, pid: int, spawner_pid: int | None, log_path: str | None) -> None:
        """Record the agent process of a spawned session, the process watching it, and its log."""

    async def set_exit_code(self, session_id: str, exit_code: int, status: SessionStatus) -> None:
        """Complete an ended session's record with the exit code its spawner observed."""

    async def revive_session(
        self,
        session_id: str,
        status: SessionStatus,
        pid: int | None,
        *,
        spawner: tuple[int, str] | None = None,
        ended_only: bool = False,
        keep_pid: bool = False,
    ) -> SessionRecord:
        """A resumed session is live again: clear its end and heartbeat, set status and pid. `spawner`
        (pid, host) names the process respawning it, which vouches for it until its server beats. With
        `ended_only`, only an ended session is revived (else `Conflict`): one of two takers wins. With
        `keep_pid`, the stored pid stays (a spawned agent's, which its spawner records)."""

    async def end_session(
        self,
        session_id: str,
        status: SessionStatus,
        exit_code: int | None,
        *,
        max_attempts: int,
        tell: Callable[[SessionEnding], NewMessage | None] | None = None,
    ) -> SessionEnding | None:
        """End a live session and, in the same transaction, let go of what it held: its in_progress tasks
        go back to ready (failed once attempted `max_attempts` times), tasks reserved for it are
        unassigned, its pending approval requests are closed; and store the message `tell` makes of
        the ending (its parent's event), if any. `tell` must not do I/O: it may run once per attempt.
        None unless this call ended it (exactly one caller wins)."""

    async def overview(self, me: SessionRecord) -> SessionOverview:
        """Everything `whoami` shows around `me` (parent, coordinator, siblings, open tasks, directives,
        unread mail), in one read."""

    # -- mail -----------------------------------------------------------------
    async def insert_message(self, message: NewMessage) -> None:
        """Store a message and one `sent` receipt per recipient, then ring the recipients."""

    async def get_message(self, message_id: str) -> Message | None: ...

    async def thread_exists(self, thread_id: str) -> bool: ...

    async def unread(self, session_id: str) -> Unread: ...

    async def take_unread(
        self, session_id: str, limit: int, *, taken_at: float | None = None
    ) -> tuple[list[Message], int]:
        """Return up to `limit` unread messages (critical first, then oldest) marked `delivered` (at
        `taken_at`, default now), and how many unread remain. Each message is taken by exactly one caller."""

    async def put_back(self, session_id: str, message_ids: Sequence[str], taken_at: float) -> int:
        """A take whose messages never reached the agent (it was cancelled): those receipts go back to
        `sent`, but only those still `delivered` by exactly that take. Returns how many went back."""

    async def peek_unread(self, session_id: str, limit: int) -> list[Message]:
        """Unread messages (critical first, then oldest) without marking them: for announcing and
        for delivery through a CLI hook, which marks them only once the CLI has the text."""

    async def mark_delivered(self, session_id: str, message_ids: Sequence[str]) -> list[str]:
        """Receipts of these messages still `sent` to the session become `delivered`; the ids changed."""

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
        expect_assignee: str | None = None,
    ) -> TaskChange:
        """Conditional update: applies only while the task is still `expect` (else `Conflict`).
        A task reaching done readies its dependents whose dependencies are all done; one reaching
        failed or cancelled blocks its pending dependents; one going back to ready (a retry)
        unblocks them. Giving it to `assignee_id` needs that session live, and the task unassigned or
        still held by `expect_assignee` (whom the caller saw holding it): else `Conflict`."""

    async def set_task_text(
        self, task_id: str, *, title: str, description: str, acceptance: str, holder: str | None = None
    ) -> bool:
        """Rewrite a task's texts while it is pending or ready, or in progress under `holder` (who has
        just claimed it); False otherwise."""

    async def add_report(self, report: ReportRecord, status: SessionStatus | None) -> None:
        """Append to the session's timeline and set its status, in one transaction."""

    async def reports(
        self, *, session_id: str | None = None, task_id: str | None = None, limit: int = 50
    ) -> list[ReportRecord]:
        """Newest first."""

    # -- approvals ------------------------------------------------------------
    async def create_approval(self, record: ApprovalRecord) -> None:
        """Store a pending permission request; rings `approvals`."""

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None: ...

    async def list_approvals(
        self, *, status: ApprovalStatus | None = None, session_id: str | None = None, limit: int = 200
    ) -> list[ApprovalRecord]:
        """Oldest first."""

    async def decide_approval(
        self,
        approval_id: str,
        *,
        status: ApprovalStatus,
        decided_by: str | None,
        reason: str,
        rule: str | None = None,
    ) -> ApprovalRecord | None:
        """Answer a request that is still pending (exactly one answer wins); None when it is not pending.
        With `rule`, the rule is remembered for the decider's team in the same transaction."""

    async def policy_rules(self, scope_ids: Sequence[str]) -> list[tuple[str, str]]:
        """(rule, decision) remembered for any of these sessions' teams, oldest first."""

    # -- activity -------------------------------------------------------------
    async def record_activity(self, batch: ActivityBatch) -> SessionStats:
        """Add a relay's batch of events and usage (once, even when retried); trims the session's window
        to about `batch.window` events; counts usage to the task the session has in progress. Rings
        `activity:<session_id>` and `activity`."""

    async def session_stats(self, session_ids: Sequence[str] | None = None) -> dict[str, SessionStats]:
        """Stats of these sessions (all, for None); sessions without activity or limits are absent."""

    async def activity(self, session_id: str, *, after: int = 0, limit: int = 500) -> list[ActivityEvent]:
        """Events of the window after `after` (a seq), oldest first."""

    async def last_activity(self, session_id: str, limit: int) -> list[ActivityEvent]:
        """The last `limit` events, oldest first."""

    async def set_limits(self, session_id: str, budget_usd: float | None, max_turns: int | None) -> None:
        """Set (or clear) a session's budget and turn limit; a new budget may warn again."""

    async def set_launch(self, session_id: str, launch: dict[str, Any], conversation_id: str | None) -> None:
        """Remember how a worker was started (agent, model, isolation, ...), for a respawn."""

    async def count_restart(self, session_id: str) -> SessionStats:
        """A respawn: count it and start its silence and relay numbering afresh."""

    async def warn_budget(self, session_id: str) -> bool:
        """True for the one caller that gets to warn of this budget."""

    async def notice_silence(self, session_id: str, since: float) -> bool:
        """True for the one caller that gets to tell of a silence that began at `since`."""

    async def task_usage(self, task_ids: Sequence[str] | None = None) -> list[TaskUsage]: ...

    async def take_back_tasks(self, session_id: str) -> list[TaskRecord]:
        """Tasks released when this session ended and still unclaimed: assigned to it again."""

    # -- shared state ---------------------------------------------------------
    async def put_state(
        self, key: str, value: str, *, set_by: str | None, ttl_s: float | None, if_version: int | None
    ) -> StateWrite:
        """Set `key` to `value` (JSON text). With `if_version`, only while the live version is that
        (0: unset); exactly one of any number of racing writers with the same `if_version` wins.
        Rings the key's topic when it wins."""

    async def get_state(self, key: str) -> StateEntry | None:
        """The live value of `key`, or None when it is unset or expired."""

    async def list_state(self, prefix: str = "", limit: int = 1000) -> list[StateEntry]:
        """Live keys starting with `prefix`, by key."""

    async def expire_state(self, key: str) -> bool:
        """Unset a live key (its version is kept); False when it was not set."""
