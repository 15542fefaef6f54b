"""`Store` over any backend: each method is one transaction of shared steps on the backend's executor.

A method here says only which step it runs, whether it reads or writes, and
whether a write may be repeated safely after a lost COMMIT (`idempotent`: keyed
by a client-made id, or setting absolute values). What it wakes is yielded by
its step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

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
    now,
)

from . import activity, approvals, mail, operator, schema, sessions, state, tasks
from .notify import Subscription
from .port import Executor
from .steps import Step


class SQLStore:
    """All state of one project, on the backend `executor` speaks to."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.location = executor.location

    async def open(self) -> None:
        await self.executor.open()

    async def close(self) -> None:
        await self.executor.close()

    async def schema_version(self) -> int:
        return await self.executor.read(schema.version)

    async def health(self) -> dict[str, str]:
        return await self.executor.health()

    # -- wake-ups -------------------------------------------------------------------------------------------
    def subscribe(self, topic: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        return self.executor.subscribe(topic)

    async def wake(self, topics: Sequence[str]) -> None:
        await self.executor.wake(topics)

    async def listen(self, owner: str, task_group: anyio.abc.TaskGroup) -> None:
        await self.executor.listen(owner, task_group)

    # -- sessions -------------------------------------------------------------------------------------------
    async def create_session(self, record: SessionRecord, reserve: Sequence[TaskRecord] = ()) -> SessionRecord:
        return await self.executor.write(lambda: sessions.create(record, reserve), idempotent=True)

    async def get_session(self, key: str) -> SessionRecord | None:
        return await self.executor.read(lambda: sessions.get(key))

    async def session_by_token_hash(self, token_hash: str) -> SessionRecord | None:
        return await self.executor.read(lambda: sessions.by_token(token_hash))

    async def set_token_hash(self, session_id: str, token_hash: str | None) -> bool:
        return await self.executor.write(lambda: sessions.set_token(session_id, token_hash), idempotent=True)

    async def list_sessions(
        self,
        *,
        role: Role | None = None,
        status: SessionStatus | None = None,
        parent_id: str | None = None,
        live: bool | None = None,
    ) -> list[SessionRecord]:
        return await self.executor.read(lambda: sessions.listed(role, status, parent_id, live))

    async def set_session_status(self, session_id: str, status: SessionStatus) -> SessionRecord | None:
        return await self.executor.write(lambda: sessions.set_status(session_id, status), idempotent=True)

    async def touch_session(self, session_id: str, pid: int | None = None) -> None:
        await self.executor.write(lambda: sessions.touch(session_id, pid), idempotent=True)

    async def heartbeat(self, session_id: str, host: str) -> bool:
        return await self.executor.write(lambda: sessions.heartbeat(session_id, host), idempotent=True)

    async def liveness_suspects(self, host: str, expired: float) -> list[SessionRecord]:
        return await self.executor.read(lambda: sessions.suspects(host, expired))

    async def set_process(self, session_id: str, pid: int, spawner_pid: int | None, log_path: str | None) -> None:
        await self.executor.write(lambda: sessions.set_process(session_id, pid, spawner_pid, log_path), idempotent=True)

    async def set_exit_code(self, session_id: str, exit_code: int, status: SessionStatus) -> None:
        await self.executor.write(lambda: sessions.set_exit_code(session_id, exit_code, status), idempotent=True)

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
        return await self.executor.write(
            lambda: sessions.revive(session_id, status, pid, spawner, ended_only, keep_pid), idempotent=not ended_only
        )

    async def end_session(
        self,
        session_id: str,
        status: SessionStatus,
        exit_code: int | None,
        *,
        max_attempts: int,
        tell: Callable[[SessionEnding], NewMessage | None] | None = None,
    ) -> SessionEnding | None:
        # Not idempotent: its answer says whether this call ended the session.
        return await self.executor.write(lambda: sessions.end(session_id, status, exit_code, max_attempts, tell))

    async def overview(self, me: SessionRecord) -> SessionOverview:
        return await self.executor.read(lambda: sessions.overview(me))

    # -- mail -----------------------------------------------------------------------------------------------
    async def insert_message(self, message: NewMessage) -> None:
        await self.executor.write(lambda: mail.insert(message), idempotent=True)

    async def get_message(self, message_id: str) -> Message | None:
        return await self.executor.read(lambda: mail.get(message_id))

    async def thread_exists(self, thread_id: str) -> bool:
        return await self.executor.read(lambda: mail.thread_exists(thread_id))

    async def unread(self, session_id: str) -> Unread:
        return await self.executor.read(lambda: mail.unread(session_id))

    async def take_unread(
        self, session_id: str, limit: int, *, taken_at: float | None = None
    ) -> tuple[list[Message], int]:
        if (await self.unread(session_id)).count == 0:
            return [], 0  # nothing to take: spare the write lock
        at = now() if taken_at is None else taken_at
        # Not idempotent: a repeated take would hand out other messages than the lost answer held.
        return await self.executor.write(lambda: mail.take(session_id, limit, at))

    async def put_back(self, session_id: str, message_ids: Sequence[str], taken_at: float) -> int:
        return await self.executor.write(lambda: mail.put_back(session_id, message_ids, taken_at), idempotent=True)

    async def peek_unread(self, session_id: str, limit: int) -> list[Message]:
        return await self.executor.read(lambda: mail.peek(session_id, limit))

    async def mark_delivered(self, session_id: str, message_ids: Sequence[str]) -> list[str]:
        return await self.executor.write(lambda: mail.mark_delivered(session_id, message_ids), idempotent=True)

    async def recent_read(self, session_id: str, limit: int) -> list[Message]:
        return await self.executor.read(lambda: mail.recent_read(session_id, limit))

    async def thread(self, thread_id: str) -> list[ThreadMessage]:
        return await self.executor.read(lambda: mail.thread(thread_id), snapshot=True)

    async def mark_thread_delivered(self, thread_id: str, session_id: str) -> int:
        return await self.executor.write(lambda: mail.mark_thread_delivered(thread_id, session_id), idempotent=True)

    async def ack(self, session_id: str, message_ids: Sequence[str]) -> list[str]:
        return await self.executor.write(lambda: mail.ack(session_id, message_ids), idempotent=True)

    # -- directives and views -------------------------------------------------------------------------------
    async def active_directives(self, session_id: str) -> list[Directive]:
        return await self.executor.read(lambda: operator.directives(session_id))

    async def all_directives(self) -> list[Directive]:
        return await self.executor.read(lambda: operator.directives(None))

    async def add_directive(
        self, directive_id: str, text: str, target_id: str | None, priority: bool, created_by: str | None
    ) -> None:
        await self.executor.write(
            lambda: operator.add_directive(directive_id, text, target_id, priority, created_by), idempotent=True
        )

    async def clear_directives(self, directive_id: str | None) -> int:
        return await self.executor.write(lambda: operator.clear_directives(directive_id))

    async def recent_messages(self, limit: int) -> list[ThreadMessage]:
        return await self.executor.read(lambda: operator.recent_messages(limit), snapshot=True)

    async def counts(self) -> dict[str, int]:
        return await self.executor.read(operator.counts, snapshot=True)

    # -- snapshots ------------------------------------------------------------------------------------------
    async def dump(self) -> dict[str, list[dict[str, Any]]]:
        return await self.executor.read(operator.dump, snapshot=True)

    async def restore(self, tables: dict[str, list[dict[str, Any]]], *, replace: bool) -> None:
        await self.executor.write(lambda: operator.restore(tables, replace))

    async def is_empty(self) -> bool:
        return await self.executor.read(operator.is_empty, snapshot=True)

    # -- tasks ----------------------------------------------------------------------------------------------
    async def create_tasks(self, new: Sequence[NewTask]) -> list[TaskRecord]:
        return await self.executor.write(lambda: tasks.create(new), idempotent=True)

    async def get_task(self, task_id: str) -> TaskRecord | None:
        return await self.executor.read(lambda: tasks.get(task_id))

    async def get_tasks(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
        return await self.executor.read(lambda: tasks.get_many(task_ids))

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        assignee_id: str | None = None,
        parent_id: str | None = None,
    ) -> list[TaskRecord]:
        return await self.executor.read(lambda: tasks.listed(status, assignee_id, parent_id))

    async def ready_tasks(self, session_id: str, limit: int) -> list[TaskRecord]:
        return await self.executor.read(lambda: tasks.ready(session_id, limit))

    async def claim_task(self, session_id: str, limit: int) -> ClaimOutcome:
        return await self.executor.write(lambda: tasks.claim(session_id, limit))

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
        return await self.executor.write(
            lambda: tasks.update(
                task_id, expect, status, result, artifacts, assignee_id, unassign, blocked_reason, expect_assignee
            )
        )

    async def set_task_text(
        self, task_id: str, *, title: str, description: str, acceptance: str, holder: str | None = None
    ) -> bool:
        return await self.executor.write(
            lambda: tasks.set_text(task_id, title, description, acceptance, holder), idempotent=True
        )

    async def add_report(self, report: ReportRecord, status: SessionStatus | None) -> None:
        await self.executor.write(lambda: tasks.add_report(report, status), idempotent=True)

    async def reports(
        self, *, session_id: str | None = None, task_id: str | None = None, limit: int = 50
    ) -> list[ReportRecord]:
        return await self.executor.read(lambda: tasks.reports(session_id, task_id, limit))

    # -- approvals ------------------------------------------------------------------------------------------
    async def create_approval(self, record: ApprovalRecord) -> None:
        await self.executor.write(lambda: approvals.create(record), idempotent=True)

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        return await self.executor.read(lambda: approvals.get(approval_id))

    async def list_approvals(
        self, *, status: ApprovalStatus | None = None, session_id: str | None = None, limit: int = 200
    ) -> list[ApprovalRecord]:
        return await self.executor.read(lambda: approvals.listed(status, session_id, limit))

    async def decide_approval(
        self,
        approval_id: str,
        *,
        status: ApprovalStatus,
        decided_by: str | None,
        reason: str,
        rule: str | None = None,
    ) -> ApprovalRecord | None:
        # Not idempotent: its answer says whether this call decided.
        return await self.executor.write(lambda: approvals.decide(approval_id, status, decided_by, reason, rule))

    async def policy_rules(self, scope_ids: Sequence[str]) -> list[tuple[str, str]]:
        return await self.executor.read(lambda: approvals.rules(scope_ids))

    # -- activity -------------------------------------------------------------------------------------------
    async def record_activity(self, batch: ActivityBatch) -> SessionStats:
        return await self.executor.write(lambda: activity.record(batch), idempotent=True)

    async def session_stats(self, session_ids: Sequence[str] | None = None) -> dict[str, SessionStats]:
        return await self.executor.read(lambda: activity.stats(session_ids))

    async def activity(self, session_id: str, *, after: int = 0, limit: int = 500) -> list[ActivityEvent]:
        return await self.executor.read(lambda: activity.events(session_id, after, limit))

    async def last_activity(self, session_id: str, limit: int) -> list[ActivityEvent]:
        return await self.executor.read(lambda: activity.last_events(session_id, limit))

    async def set_limits(self, session_id: str, budget_usd: float | None, max_turns: int | None) -> None:
        await self.executor.write(lambda: activity.set_limits(session_id, budget_usd, max_turns), idempotent=True)

    async def set_launch(self, session_id: str, launch: dict[str, Any], conversation_id: str | None) -> None:
        await self.executor.write(lambda: activity.set_launch(session_id, launch, conversation_id), idempotent=True)

    async def count_restart(self, session_id: str) -> SessionStats:
        return await self.executor.write(lambda: activity.restarted(session_id))

    async def warn_budget(self, session_id: str) -> bool:
        # Not idempotent: its answer says whether this call gets to warn.
        return await self.executor.write(lambda: activity.warn_budget(session_id))

    async def notice_silence(self, session_id: str, since: float) -> bool:
        return await self.executor.write(lambda: activity.notice_silence(session_id, since))

    async def task_usage(self, task_ids: Sequence[str] | None = None) -> list[TaskUsage]:
        return await self.executor.read(lambda: activity.task_usage(task_ids))

    async def take_back_tasks(self, session_id: str) -> list[TaskRecord]:
        return await self.executor.write(lambda: tasks.take_back(session_id))

    # -- shared state ---------------------------------------------------------------------------------------
    async def put_state(
        self, key: str, value: str, *, set_by: str | None, ttl_s: float | None, if_version: int | None
    ) -> StateWrite:
        def step() -> Step[StateWrite]:
            ts = now()  # per attempt: a retried write expires from when it was made
            return state.put(key, value, set_by, ts, None if ttl_s is None else ts + ttl_s, if_version)

        # Not idempotent: a repeated unconditional write would count one version too many.
        return await self.executor.write(step)

    async def get_state(self, key: str) -> StateEntry | None:
        return await self.executor.read(lambda: state.get(key, now()))

    async def list_state(self, prefix: str = "", limit: int = 1000) -> list[StateEntry]:
        return await self.executor.read(lambda: state.listed(prefix, now(), limit))

    async def expire_state(self, key: str) -> bool:
        return await self.executor.write(lambda: state.expire(key, now()), idempotent=True)
