"""Sessions: registration, resumption by token, discovery, and the end of a session."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from maestro_mcp.config import max_attempts
from maestro_mcp.errors import AuthError, Conflict, InvalidArgument, NotFound
from maestro_mcp.ids import hash_token, new_id, new_token, token_matches
from maestro_mcp.models import (
    Priority,
    Role,
    SessionInfo,
    SessionRecord,
    SessionStatus,
    TaskRecord,
    TaskStatus,
    iso,
    now,
)
from maestro_mcp.store import Store

from .mail import SCOPES, MailService, coordinator_of

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RESERVED_NAMES = {*SCOPES, "me"}
ENDED = (SessionStatus.exited, SessionStatus.stopped, SessionStatus.failed)


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidArgument(
            f"{name!r} is not a valid session name.",
            "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
        )
    if name in RESERVED_NAMES:
        raise InvalidArgument(f"{name!r} is reserved as a mail target.", "Choose another name.")
    return name


@dataclass(frozen=True)
class Registered:
    session: SessionRecord
    token: str
    """The plaintext token: returned once, stored only as a hash."""


class SessionService:
    def __init__(self, store: Store, mail: MailService) -> None:
        self.store = store
        self.mail = mail

    async def register(
        self,
        *,
        name: str | None,
        role: Role,
        agent: str,
        parent: str | None = None,
        workspace: str | None = None,
        pid: int | None = None,
        status: SessionStatus = SessionStatus.working,
        directive: str | None = None,
        profile: str | None = None,
        isolation: str | None = None,
        branch: str | None = None,
    ) -> Registered:
        parent_record: SessionRecord | None = None
        if parent is not None:
            parent_record = await self.store.get_session(parent)
            if parent_record is None:
                raise NotFound(f"No parent session {parent!r}.", "Name an existing session with --parent.")
        session_id = new_id("s")
        final_name = check_name(name) if name else f"{agent or role.value}-{session_id[2:6]}"
        token = new_token()
        ts = now()
        record = SessionRecord(
            id=session_id,
            name=final_name,
            role=role,
            agent=agent,
            parent_id=parent_record.id if parent_record else None,
            status=status,
            workspace=workspace,
            pid=pid,
            created_at=ts,
            last_seen_at=ts,
            token_hash=hash_token(token),
            directive=directive,
            profile=profile,
            isolation=isolation,
            branch=branch,
        )
        await self.store.create_session(record)
        return Registered(record, token)

    async def authenticate(self, session_id: str, token: str) -> SessionRecord:
        """The session whose id and token these are; one error for both kinds of mismatch."""
        record = await self.store.get_session(session_id)
        if record is None or record.id != session_id or not token_matches(token, record.token_hash):
            raise AuthError(
                f"MAESTRO_SESSION={session_id!r} with the given MAESTRO_TOKEN is not a valid session.",
                "Start the agent through `maestro launch` / spawn_worker, or unset both variables to"
                " register a new session.",
            )
        return record

    async def resume(self, session_id: str, token: str, pid: int | None) -> SessionRecord:
        """Authenticate and mark the session live and working under this process."""
        record = await self.authenticate(session_id, token)
        # A spawned session's pid is its agent's process, which the spawner recorded: keep it.
        own_pid = record.pid if record.spawner_pid is not None else pid
        if not record.live or record.status is SessionStatus.spawning:
            return await self.store.revive_session(record.id, SessionStatus.working, own_pid)
        await self.store.touch_session(record.id, own_pid)
        return record

    async def get(self, key: str) -> SessionRecord:
        record = await self.store.get_session(key)
        if record is None:
            raise NotFound(f"No session {key!r}.", "Call list_sessions to see who is here.")
        return record

    async def end(
        self, session: SessionRecord, status: SessionStatus, exit_code: int | None = None, reason: str = ""
    ) -> SessionRecord | None:
        """End a live session: release its in-progress tasks and tell its parent with an `event` mail
        (exit code, tasks released, last report). Idempotent: exactly one caller wins."""
        ended = await self.store.end_session(session.id, status, exit_code)
        if ended is None:
            return None
        released = await self.store.release_tasks(ended.id, max_attempts())
        freed = await self._unreserve(ended)
        if ended.parent_id is None:
            return ended
        parent = await self.store.get_session(ended.parent_id)
        if parent is None:
            return ended
        # Told even when the parent has ended too: a coordinator resumed by a new server reads it then.
        code = "" if exit_code is None else f" with exit code {exit_code}"
        lines = [f"{ended.name} ({ended.role.value}, {ended.agent}) has {status.value}{code}."]
        if reason:
            lines.append(reason)
        for task in released:
            fate = "back to ready" if task.status is TaskStatus.ready else task.status.value
            lines.append(f"Task {task.id} ({task.title}) released: {fate} after {task.attempts} attempt(s).")
        for task in freed:
            lines.append(f"Task {task.id} ({task.title}) was reserved for it and is unassigned again.")
        last = await self.store.reports(session_id=ended.id, limit=1)
        if last:
            lines.append(f"Last report ({last[0].kind.value}): {last[0].summary}")
        abnormal = status is SessionStatus.failed or bool(exit_code) or bool(released) or bool(freed)
        await self.mail.send_event(
            ended,
            [parent],
            f"{ended.name} {status.value}{code}",
            "\n".join(lines),
            priority=Priority.high if abnormal else Priority.normal,
        )
        return ended

    async def _unreserve(self, ended: SessionRecord) -> list[TaskRecord]:
        """Tasks reserved for an ended session but never started: nobody else could claim them, so they
        go back to the pool."""
        freed = []
        for task in await self.store.list_tasks(assignee_id=ended.id):
            if task.status in (TaskStatus.pending, TaskStatus.ready, TaskStatus.blocked):
                with contextlib.suppress(Conflict):  # it moved on meanwhile: leave it
                    freed.append((await self.store.update_task(task.id, expect=task.status, unassign=True)).task)
        return freed

    async def infos(
        self, records: list[SessionRecord], everyone: list[SessionRecord] | None = None
    ) -> list[SessionInfo]:
        """Public views of `records`; `everyone` (all sessions), when the caller has it, spares a query."""
        if everyone is None:
            everyone = await self.store.list_sessions() if any(r.parent_id for r in records) else []
        names = {s.id: s.name for s in everyone}
        return [self.info(r, names.get(r.parent_id) if r.parent_id else None) for r in records]

    @staticmethod
    def info(record: SessionRecord, parent_name: str | None) -> SessionInfo:
        return SessionInfo(
            session_id=record.id,
            name=record.name,
            role=record.role,
            agent=record.agent,
            parent=parent_name,
            status=record.status,
            live=record.live,
            last_seen_at=iso(record.last_seen_at),
            exit_code=record.exit_code,
        )

    async def list_infos(self, role: Role | None = None, status: SessionStatus | None = None) -> list[SessionInfo]:
        # One query: the parents' names come from the same list the filter is applied to.
        everyone = await self.store.list_sessions()
        chosen = [s for s in everyone if (role is None or s.role is role) and (status is None or s.status is status)]
        return await self.infos(chosen, everyone)

    async def siblings(self, caller: SessionRecord, parent: SessionRecord | None = None) -> list[SessionInfo]:
        """The other children of the caller's parent. Pass the parent if you have it: it names them all."""
        if caller.parent_id is None:
            return []
        if parent is None or parent.id != caller.parent_id:
            parent = await self.store.get_session(caller.parent_id)
        peers = await self.store.list_sessions(parent_id=caller.parent_id)
        parent_name = parent.name if parent is not None else None
        return [self.info(p, parent_name) for p in peers if p.id != caller.id]

    async def coordinator(self, caller: SessionRecord) -> SessionRecord | None:
        return await coordinator_of(self.store, caller)
