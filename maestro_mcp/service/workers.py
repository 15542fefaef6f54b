"""Spawning, stopping and watching workers: policy over the launch package.

A worker is a session (status `spawning`, parent = its coordinator) plus an
agent process started from a launcher definition with its own `maestro serve`
wired in. The spawner hears the process exit at once; the session then ends
(`exited`, `failed` or `stopped`, with the exit code), its in-progress tasks
are released, and the coordinator gets an `event` mail.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from maestro_mcp import manifest as manifests
from maestro_mcp.config import SAFETY_POLL_S, connect_grace_s, max_workers
from maestro_mcp.errors import Conflict, Forbidden, InvalidArgument, NotFound
from maestro_mcp.launch import definitions, worktree
from maestro_mcp.launch.plan import LaunchRequest, build_plan
from maestro_mcp.launch.spawner import Spawner, pid_alive, resolve_binary, wait_pid
from maestro_mcp.models import Priority, Role, SessionRecord, SessionStatus, TaskRecord, TaskStatus
from maestro_mcp.service.mail import MailService, coordinator_of
from maestro_mcp.service.sessions import SessionService, check_name
from maestro_mcp.service.tasks import TaskService
from maestro_mcp.store import Store

ASSIGNABLE = (TaskStatus.pending, TaskStatus.ready, TaskStatus.blocked, TaskStatus.failed)
STOP_KILL_GRACE_S = 5.0
BUILTIN_WORKER = Path(__file__).resolve().parent.parent / "agents" / "worker.py"


@dataclass(frozen=True)
class Spawned:
    session: SessionRecord
    pid: int
    log_path: str


def keep_workers() -> bool:
    """MAESTRO_KEEP_WORKERS=1 leaves workers running when their coordinator ends."""
    return os.environ.get("MAESTRO_KEEP_WORKERS", "") in ("1", "true", "yes")


async def build_manifest(store: Store, session: SessionRecord, project_root: Path, team: str = "") -> str:
    """The manifest of `session` as it stands now: identity, coordinator, team, tasks, steering."""
    coordinator = await coordinator_of(store, session)
    siblings: list[tuple[str, str, list[str]]] = []
    if session.parent_id is not None:
        for peer in await store.list_sessions(parent_id=session.parent_id, live=True):
            if peer.id != session.id:
                titles = [t.title for t in await store.list_tasks(assignee_id=peer.id)]
                siblings.append((peer.name, peer.status.value, titles))
    if session.role is Role.coordinator:
        own: Sequence[TaskRecord] = await store.list_tasks()
    else:
        own = await store.list_tasks(assignee_id=session.id)
    profile = manifests.profile_text(session.profile, project_root) if session.profile else ""
    ctx = manifests.ManifestContext(
        session=session,
        coordinator=coordinator.name if coordinator else None,
        directive=session.directive or "",
        tasks=own,
        siblings=siblings,
        steering=await store.active_directives(session.id),
        profile=profile,
        team=team,
        agents=sorted(definitions.available(project_root)),
    )
    return manifests.render(ctx, project_root)


class WorkerService:
    def __init__(
        self,
        store: Store,
        sessions: SessionService,
        mail: MailService,
        tasks: TaskService,
        task_group: anyio.abc.TaskGroup,
        *,
        project_root: Path,
        db: str,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.mail = mail
        self.tasks = tasks
        # Children are watched from `task_group`, which lives as long as this server process.
        self.spawner = Spawner(task_group, self.on_exit)
        self.project_root = project_root
        self.db = db
        self.base_env = dict(base_env if base_env is not None else os.environ)
        self._stopping: dict[str, str] = {}

    async def manifest_for(self, session: SessionRecord, team: str = "") -> str:
        return await build_manifest(self.store, session, self.project_root, team)

    # -- spawning -------------------------------------------------------------
    def _agent(self, agent: str) -> tuple[str, str | None]:
        kind, _, script = agent.partition(":")
        kind = kind.strip()
        if kind != "script":
            if script:
                raise InvalidArgument(f"Agent {agent!r}: only script agents take a path after ':'.")
            return kind, None
        if not script:
            return kind, str(BUILTIN_WORKER)
        path = (self.project_root / script).resolve()
        if not path.is_relative_to(self.project_root.resolve()):
            raise InvalidArgument(f"Script {script!r} is outside the project.", "Use a path inside the project.")
        if not path.is_file():
            raise NotFound(f"No script at {path}.", "Give a path relative to the project root.")
        return kind, str(path)

    async def _name(self, name: str | None, kind: str) -> str:
        if name:
            check_name(name)
            if await self.store.get_session(name) is not None:
                raise Conflict(f"The name {name!r} is taken.", "Choose another name, or leave it out.")
            return name
        for n in range(1, 10_000):
            candidate = f"{kind}-{n}"
            if await self.store.get_session(candidate) is None:
                return candidate
        raise Conflict("No free worker name.")

    async def _tasks_for(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        found = await self.store.get_tasks(task_ids)
        missing = [t for t in task_ids if t not in found]
        if missing:
            raise NotFound(f"No task {', '.join(map(repr, missing))}.", "Use ids from task_list.")
        records = [found[t] for t in dict.fromkeys(task_ids)]
        for task in records:
            if task.status not in ASSIGNABLE or task.assignee_id is not None:
                raise Conflict(
                    f"Task {task.id} is {task.status.value}" + (" and already assigned." if task.assignee_id else "."),
                    "Give a worker only tasks that are unassigned and not started or finished.",
                )
        return records

    async def spawn(
        self,
        caller: SessionRecord,
        *,
        agent: str,
        directive: str,
        task_ids: Sequence[str] = (),
        name: str | None = None,
        isolation: str = "shared",
        model: str | None = None,
        profile: str | None = None,
    ) -> Spawned:
        if caller.role is not Role.coordinator:
            raise Forbidden(
                "Only a coordinator can spawn workers.", "Ask your coordinator: mail_send(to='coordinator', ...)."
            )
        if isolation not in ("shared", "worktree"):
            raise InvalidArgument(f"isolation={isolation!r} is not known.", "Use 'shared' or 'worktree'.")
        kind, script = self._agent(agent)
        definition = definitions.load(kind, self.project_root)
        if profile:
            manifests.profile_text(profile, self.project_root)  # refuse an unknown profile now
        live = [s for s in await self.store.list_sessions(parent_id=caller.id, live=True) if s.role is Role.worker]
        if len(live) >= max_workers():
            raise Conflict(
                f"You already have {len(live)} live workers; the limit is {max_workers()}.",
                "Wait for one to finish or stop_worker one (MAESTRO_MAX_WORKERS raises the limit).",
            )
        final_name = await self._name(name, kind)
        tasks = await self._tasks_for(task_ids)
        request = LaunchRequest(
            definition=definition,
            session_id="",
            token="",
            name=final_name,
            manifest="",
            workspace=self.project_root,
            project_root=self.project_root,
            db=self.db,
            base_env=self.base_env,
            model=model,
            script=script,
            python=sys.executable,
        )
        # The planner is pure: a draft with a placeholder identity refuses a definition that cannot be
        # planned, and a missing CLI, before anything (session, worktree, process) exists.
        draft = build_plan(request)
        resolve_binary(draft.argv[0], draft.env, definition.install)

        workspace, branch = self.project_root, None
        if isolation == "worktree":
            workspace, branch = await worktree.create(self.project_root, final_name)
        session: SessionRecord | None = None
        assigned: list[TaskRecord] = []
        pid: int | None = None
        try:
            registered = await self.sessions.register(
                name=final_name,
                role=Role.worker,
                agent=kind,
                parent=caller.id,
                workspace=str(workspace),
                status=SessionStatus.spawning,
                directive=directive,
                profile=profile,
                isolation=isolation,
                branch=branch,
            )
            session = registered.session
            for task in tasks:
                await self.store.update_task(task.id, expect=task.status, assignee_id=session.id)
                assigned.append(task)
            plan = build_plan(
                dataclasses.replace(
                    request,
                    session_id=session.id,
                    token=registered.token,
                    name=session.name,
                    manifest=await self.manifest_for(session),
                    workspace=workspace,
                )
            )
            pid = await self.spawner.start(session.id, plan, definition.install)
            await self.store.set_process(session.id, pid, os.getpid(), plan.log_path)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._undo(session, assigned, pid, workspace if branch else None, branch)
            raise
        self.spawner.task_group.start_soon(self._await_connect, session.id)
        record = await self.store.get_session(session.id)
        return Spawned(record or session, pid, plan.log_path)

    async def _undo(
        self,
        session: SessionRecord | None,
        assigned: list[TaskRecord],
        pid: int | None,
        worktree_path: Path | None,
        branch: str | None,
    ) -> None:
        """Leave nothing half-created: no live session, no reserved task, no process, no worktree."""
        if pid is not None and session is not None:
            self._stopping[session.id] = "spawn failed"
            await self.spawner.terminate(session.id, pid, STOP_KILL_GRACE_S)
        for task in assigned:
            current = await self.store.get_task(task.id)
            if current is not None:
                await self.store.update_task(task.id, expect=current.status, unassign=True)
        if session is not None:
            await self.store.end_session(session.id, SessionStatus.failed, None)
        if worktree_path is not None:
            await worktree.remove(self.project_root, worktree_path, branch)

    async def _await_connect(self, session_id: str) -> None:
        """A worker whose server never connects within the grace period is failed, and its process stopped."""
        grace = connect_grace_s()
        with anyio.move_on_after(grace):
            async with self.store.subscribe("sessions") as bell:
                while True:
                    session = await self.store.get_session(session_id)
                    if session is None or not session.live or session.status is not SessionStatus.spawning:
                        return
                    await bell.wait(SAFETY_POLL_S)
        session = await self.store.get_session(session_id)
        if session is None or not session.live or session.status is not SessionStatus.spawning:
            return
        reason = f"Its maestro server never connected within {grace} s; see {session.log_path}."
        self._stopping[session_id] = reason
        await self.sessions.end(session, SessionStatus.failed, None, reason)
        if session.pid:
            await self.spawner.terminate(session_id, session.pid, STOP_KILL_GRACE_S)

    # -- exits ----------------------------------------------------------------
    async def on_exit(self, session_id: str, code: int) -> None:
        """The spawner saw a worker's process exit: end its session with the exit code."""
        session = await self.store.get_session(session_id)
        if session is None:
            return
        reason = self._stopping.pop(session_id, None)
        if reason is not None:
            status = SessionStatus.stopped if reason != "spawn failed" else SessionStatus.failed
        elif session.status is SessionStatus.stopped:
            # Another process (`maestro stop`, a restarted coordinator) asked it to stop.
            status, reason = SessionStatus.stopped, "It was asked to stop."
        else:
            status = SessionStatus.exited if code == 0 else SessionStatus.failed
        note = reason or (f"Its output is in {session.log_path}." if session.log_path else "")
        if await self.sessions.end(session, status, code, note) is None:
            await self.store.set_exit_code(session_id, code, session.status if not session.live else status)

    async def adopt_orphans(self, coordinator: SessionRecord) -> None:
        """Watch workers an earlier server process of this coordinator started (after a restart)."""
        for child in await self.store.list_sessions(parent_id=coordinator.id, live=True):
            if child.pid is None or self.spawner.watching(child.id):
                continue
            if child.spawner_pid is not None and child.spawner_pid != os.getpid() and pid_alive(child.spawner_pid):
                continue  # its own spawner still watches it
            if pid_alive(child.pid):
                self.spawner.task_group.start_soon(self._watch_orphan, child)
            else:
                await self.sessions.end(
                    child,
                    SessionStatus.exited,
                    None,
                    "Its process is gone (exit code unknown: it was started by an earlier server process).",
                )

    async def _watch_orphan(self, child: SessionRecord) -> None:
        assert child.pid is not None
        await wait_pid(child.pid)
        with anyio.CancelScope(shield=True):
            await self.sessions.end(
                child, SessionStatus.exited, None, "Its process exited (exit code unknown: adopted after a restart)."
            )

    # -- stopping -------------------------------------------------------------
    async def stop(self, caller: SessionRecord, key: str, reason: str, grace_s: float) -> SessionRecord:
        if not 0 <= grace_s <= 600:
            raise InvalidArgument(f"grace_s={grace_s} is out of range.", "Use 0 to 600 seconds.")
        target = await self.sessions.get(key)
        if caller.role is Role.worker:
            raise Forbidden("Only a coordinator or the operator can stop a worker.")
        if caller.role is Role.coordinator and target.parent_id != caller.id:
            raise Forbidden(f"{target.name} is not your worker.", "Stop only workers you spawned.")
        if not target.live:
            return target
        why = reason.strip() or "your coordinator asked you to stop"
        self._stopping[target.id] = f"Stopped by {caller.name}: {why}"
        # Recorded in the store too, so a spawner in another process reports `stopped`, not a crash.
        await self.store.set_session_status(target.id, SessionStatus.stopped)
        await self.mail.send_event(
            caller,
            [target],
            "stop",
            f"Stop now: {why}. Report what you have with report_progress, then end your session.",
            priority=Priority.critical,
        )
        if target.pid is not None and (self.spawner.watching(target.id) or pid_alive(target.pid)):
            with anyio.move_on_after(grace_s):
                await wait_pid(target.pid)
            await self.spawner.terminate(target.id, target.pid, STOP_KILL_GRACE_S)
        await self.sessions.end(target, SessionStatus.stopped, None, self._stopping.get(target.id, why))
        return await self.sessions.get(target.id)

    async def on_coordinator_end(self, coordinator: SessionRecord) -> None:
        """The coordinator is going away: tell its live workers, and stop them unless told to keep them."""
        children = await self.store.list_sessions(parent_id=coordinator.id, live=True)
        if not children:
            return
        keep = keep_workers()
        body = f"Your coordinator {coordinator.name} has ended." + (
            " Finish your current task, report, and end your session."
            if keep
            else " You are being stopped: report what you have now."
        )
        await self.mail.send_event(coordinator, children, f"{coordinator.name} ended", body, priority=Priority.critical)
        if keep:
            return
        async with anyio.create_task_group() as tg:
            for child in children:
                tg.start_soon(self.stop, coordinator, child.id, "the coordinator ended", 2.0)
