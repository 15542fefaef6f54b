"""Sessions: registration, resumption by token, discovery, and the end of a session."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from maestro_mcp.errors import AuthError, Conflict, InvalidArgument, NotFound
from maestro_mcp.ids import hash_token, new_id, new_token, token_matches
from maestro_mcp.launch.spawner import pid_alive
from maestro_mcp.models import (
    NewMessage,
    Priority,
    Role,
    SessionEnding,
    SessionInfo,
    SessionRecord,
    SessionStatus,
    TaskRecord,
    TaskStatus,
    iso,
    now,
)
from maestro_mcp.store import Store

from .mail import SCOPES, MailService, coordinator_of, event

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
OPERATOR = "operator"
# Mail targets, and the human's own session: an agent named `operator` would read the operator's mail.
RESERVED_NAMES = {*SCOPES, "me", OPERATOR}
ENDED = (SessionStatus.exited, SessionStatus.stopped, SessionStatus.failed)


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidArgument(
            f"{name!r} is not a valid session name.",
            "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
        )
    if name.lower() in RESERVED_NAMES:
        what = "the human operator's session" if name.lower() == OPERATOR else "a mail target"
        raise InvalidArgument(f"{name!r} is reserved for {what}.", "Choose another name.")
    return name


async def operator_session(store: Store) -> SessionRecord:
    """The human's own session (humans send mail, create tasks and answer approvals as `operator`)."""
    existing = await store.get_session(OPERATOR)
    if existing is not None and existing.role is Role.operator:
        return existing
    if existing is not None:
        raise Conflict(
            f"The session named {OPERATOR!r} is an agent ({existing.role.value}, {existing.agent}), not the operator.",
            "End or rename that session; the name is reserved for the human operator.",
        )
    ts = now()
    record = SessionRecord(
        id=new_id("s"),
        name=OPERATOR,
        role=Role.operator,
        agent="human",
        parent_id=None,
        status=SessionStatus.idle,
        workspace=None,
        pid=None,
        created_at=ts,
        last_seen_at=ts,
    )
    try:
        return await store.create_session(record)
    except Conflict:
        # Another command registered it at the same moment.
        again = await store.get_session(OPERATOR)
        if again is None:
            raise
        return again


@dataclass(frozen=True)
class Registered:
    session: SessionRecord
    token: str
    """The plaintext token: returned once, stored only as a hash."""


class SessionService:
    def __init__(self, store: Store, mail: MailService, *, max_attempts: int = 3) -> None:
        self.store = store
        self.mail = mail
        self.max_attempts = max_attempts
        """Times a task is handed out again after its worker ended mid-task (MAESTRO_MAX_ATTEMPTS)."""

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
        spawner: tuple[int, str] | None = None,
        reserve: Sequence[TaskRecord] = (),
    ) -> Registered:
        """A new session. `spawner` (pid, host) names the process spawning it, which vouches for it
        until its own server connects: if that process dies first, the liveness sweep ends it. The
        tasks in `reserve` are reserved for it in the same transaction: if one has moved since it was
        read (claimed, given to another), `Conflict`, and no session exists."""
        parent_record: SessionRecord | None = None
        if parent is not None:
            parent_record = await self.store.get_session(parent)
            if parent_record is None:
                # Resolved when the session registers (its first tool call), not when its server starts.
                raise NotFound(
                    f"No parent session {parent!r} yet.",
                    "It registers on its own first tool call: try again once it is up, or fix --parent.",
                )
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
            spawner_pid=spawner[0] if spawner else None,
            host=spawner[1] if spawner else None,
        )
        await self.store.create_session(record, reserve)
        return Registered(record, token)

    # -- taking over a name -----------------------------------------------------
    async def named(self, name: str) -> SessionRecord | None:
        """The session called `name` (not one whose id happens to be `name`)."""
        record = await self.store.get_session(name)
        return record if record is not None and record.name == name else None

    async def check_take_over(self, name: str) -> SessionRecord | None:
        """The session a `maestro serve --name NAME` would take over (None: the name is free).

        Refused while that session is live, naming who holds it. A session still marked live whose
        server process is gone from this machine (killed without a chance to say so) is not live.
        """
        record = await self.named(check_name(name))
        if record is None or not record.live or not _held(record):
            return record
        seen = iso(record.last_seen_at) or "never"
        where = f", pid {record.pid}" if record.pid else ""
        raise Conflict(
            f"The session name {name!r} is held by a live session: {record.name} ({record.role.value},"
            f" {record.agent}{where}, last seen {seen}).",
            f"Stop it first (`maestro stop {record.name}`), or choose another --name.",
        )

    async def take_over(self, name: str, *, parent: str | None, pid: int | None) -> SessionRecord | None:
        """Make the ended session called `name` live again under this process: the same session, its
        mailbox and the mail that waited for it. None when no session has that name."""
        record = await self.check_take_over(name)
        if record is None:
            return None
        if parent is not None:
            wanted = await self.store.get_session(parent)
            if wanted is None or wanted.id != record.parent_id:
                current = await self.store.get_session(record.parent_id) if record.parent_id else None
                raise Conflict(
                    f"{name} reports to {current.name if current else 'nobody'}, not {parent!r}.",
                    "Leave out --parent to take it over, or choose another --name.",
                )
        if record.live:
            # Its process died without ending it: end it now, so its parent hears and its tasks are freed.
            await self.end(record, SessionStatus.exited, None, "Its server process is gone; a new one takes over.")
        return await self.store.revive_session(record.id, SessionStatus.working, pid, ended_only=True)

    async def reissue(self, session: SessionRecord, spawner: tuple[int, str]) -> tuple[SessionRecord, str]:
        """Make an ended session live again (`spawning`, vouched for by `spawner` as in `register`)
        under a new token, for a respawn: the same id, name and mailbox; the old token no longer works."""
        # Revived first: of two respawns at once, the loser changes nothing (not even the token).
        revived = await self.store.revive_session(
            session.id, SessionStatus.spawning, None, spawner=spawner, ended_only=True
        )
        token = new_token()
        await self.store.set_token_hash(session.id, hash_token(token))
        return revived, token

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
        # A spawned session's pid is its agent's process, which the spawner records (maybe only after
        # the read above): keep what is stored.
        spawned = record.spawner_pid is not None
        if not record.live or record.status is SessionStatus.spawning:
            return await self.store.revive_session(record.id, SessionStatus.working, pid, keep_pid=spawned)
        await self.store.touch_session(record.id, None if spawned else pid)
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
        (exit code, tasks released, last report), in one transaction. Exactly one caller wins."""

        def tell(ending: SessionEnding) -> NewMessage | None:
            # Told even when the parent has ended too: a coordinator resumed by a new server reads it then.
            ended, parent = ending.session, ending.parent
            if parent is None:
                return None
            code = "" if exit_code is None else f" with exit code {exit_code}"
            lines = [f"{ended.name} ({ended.role.value}, {ended.agent}) has {status.value}{code}."]
            if reason:
                lines.append(reason)
            for task in ending.released:
                fate = "back to ready" if task.status is TaskStatus.ready else task.status.value
                lines.append(f"Task {task.id} ({task.title}) released: {fate} after {task.attempts} attempt(s).")
            for task in ending.freed:
                lines.append(f"Task {task.id} ({task.title}) was reserved for it and is unassigned again.")
            for request in ending.unanswered:
                lines.append(
                    f"Its approval request {request.id} ({request.tool}: {request.input[:80]}) was closed unanswered."
                )
            if ending.last_report is not None:
                lines.append(f"Last report ({ending.last_report.kind.value}): {ending.last_report.summary}")
            abnormal = status is SessionStatus.failed or bool(exit_code)
            abnormal = abnormal or bool(ending.released or ending.freed or ending.unanswered)
            return event(
                ended,
                [parent],
                f"{ended.name} {status.value}{code}",
                "\n".join(lines),
                priority=Priority.high if abnormal else Priority.normal,
            )

        ending = await self.store.end_session(session.id, status, exit_code, max_attempts=self.max_attempts, tell=tell)
        return ending.session if ending is not None else None

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


def _held(record: SessionRecord) -> bool:
    """Whether a live-marked session still has a process: its own or its spawner's (which reports its
    end). Without a recorded process (an HTTP session) the heartbeat decides, so it counts as held."""
    if record.pid is None:
        return True
    return pid_alive(record.pid) or (record.spawner_pid is not None and pid_alive(record.spawner_pid))
