"""Liveness that does not depend on a spawner: heartbeats, and the servers that judge them.

A session a human started (an agent CLI with a plain `maestro serve` in its config) has nobody
waiting on its process. When that CLI and its server were SIGKILLed, nothing ever ended the
session: 50 of 50 stayed live with their tasks `in_progress`. Now every serve process writes one
heartbeat (its host and the time) every `heartbeat_s`, and on the same beat each one looks at the
sessions it can judge:

- on its own host, a session whose recorded process is gone (and whose spawner, which would report
  its exit code, is gone too) is dead at once: a pid is authoritative where it can be checked;
- on its own host, a worker still being spawned (its server has not connected, so it has no
  heartbeat yet) whose spawner is gone is dead too: the coordinator was killed mid-spawn, and the
  tasks reserved for the worker would otherwise stay reserved for good;
- on another host, a session whose heartbeat is older than `heartbeat_expiry_s` is dead (clocks
  of the machines are assumed to agree within a second or two).

A dead session is ended like any other (`SessionService.end`: tasks released, parent told with an
event); a coordinator's live workers are told too. Sessions without a heartbeat (HTTP sessions,
stores written by older releases) are left to their own rules.
"""

from __future__ import annotations

import logging
import socket

import anyio

from maestro_mcp.config import Settings
from maestro_mcp.launch.spawner import pid_alive
from maestro_mcp.models import Priority, Role, SessionRecord, SessionStatus, iso, now
from maestro_mcp.store import Store

from .mail import MailService
from .sessions import SessionService

log = logging.getLogger(__name__)


def host_name(config: Settings) -> str:
    return config.host or socket.gethostname()


class LivenessService:
    def __init__(self, store: Store, sessions: SessionService, mail: MailService, config: Settings) -> None:
        self.store = store
        self.sessions = sessions
        self.mail = mail
        self.host = host_name(config)
        self.expiry_s = config.heartbeat_expiry_s

    async def beat(self, session_id: str) -> bool:
        """This process's session is alive. False once someone has ended it."""
        return await self.store.heartbeat(session_id, self.host)

    def why_dead(self, record: SessionRecord, at: float) -> str | None:
        """Why `record` is dead, as its parent will read it; None while it may be alive."""
        if record.host == self.host:
            if any(pid is not None and pid_alive(pid) for pid in (record.pid, record.spawner_pid)):
                return None  # alive, or its spawner waits on it and reports its exit code
            if record.pid is not None:
                return (
                    f"Its server process (pid {record.pid} on {record.host}) is gone:"
                    " killed without ending its session."
                )
            if record.spawner_pid is not None:
                return (
                    f"Its spawner (pid {record.spawner_pid} on {record.host}) ended before its agent started:"
                    " the spawn was interrupted."
                )
            return None  # neither pid: nothing to judge it by
        if record.heartbeat_at is not None and at - record.heartbeat_at > self.expiry_s:
            return (
                f"Its server on {record.host} has been silent since {iso(record.heartbeat_at)}"
                f" (no heartbeat for {self.expiry_s:.0f} s)."
            )
        return None

    async def sweep(self, own: str | None = None) -> list[SessionRecord]:
        """End the sessions found dead; returns those this call ended (every other server may race it)."""
        at = now()
        ended = []
        for record in await self.store.liveness_suspects(self.host, at - self.expiry_s):
            reason = None if record.id == own else self.why_dead(record, at)
            if reason is None:
                continue
            # Shielded: the winner of an end is the only one who tells its workers, and this server's own
            # shutdown cancels its beat.
            with anyio.CancelScope(shield=True):
                done = await self.sessions.end(record, SessionStatus.exited, None, reason)
                if done is None:
                    continue  # another server ended it first
                log.warning("session %s (%s) is dead: %s", done.name, done.id, reason)
                ended.append(done)
                if done.role is Role.coordinator:
                    await self._tell_workers(done, reason)
        return ended

    async def _tell_workers(self, coordinator: SessionRecord, reason: str) -> None:
        # Told to end, they take no new task on the way out: the store refuses one to the workers of an
        # ended coordinator (until it comes back, taken over or respawned).
        children = await self.store.list_sessions(parent_id=coordinator.id, live=True)
        if children:
            body = f"Your coordinator {coordinator.name} has ended. {reason} Report what you have, then end."
            await self.mail.send_event(
                coordinator, children, f"{coordinator.name} ended", body, priority=Priority.critical
            )
