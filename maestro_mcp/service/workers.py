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
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from maestro_mcp import adapters, project_config
from maestro_mcp import manifest as manifests
from maestro_mcp.adapters import Adapter, LaunchRequest
from maestro_mcp.adapters.base import LaunchPlan, hook_socket_path
from maestro_mcp.config import SAFETY_POLL_S, Settings, settings
from maestro_mcp.errors import Conflict, Forbidden, InvalidArgument, NotFound
from maestro_mcp.launch import worktree
from maestro_mcp.launch.spawner import Spawner, describe_pids, pid_alive, resolve_binary, wait_pid
from maestro_mcp.models import Priority, Role, SessionRecord, SessionStatus, TaskRecord, TaskStatus
from maestro_mcp.policy import RuleSet, load_policy
from maestro_mcp.service.activity import money
from maestro_mcp.service.liveness import host_name
from maestro_mcp.service.mail import MailService, coordinator_of
from maestro_mcp.service.sessions import SessionService, check_name
from maestro_mcp.service.tasks import TaskService
from maestro_mcp.store import Store

RESTART_EVENTS = 20
ASSIGNABLE = (TaskStatus.pending, TaskStatus.ready, TaskStatus.blocked, TaskStatus.failed)
STOP_KILL_GRACE_S = 5.0
BUILTIN_WORKER = Path(__file__).resolve().parent.parent / "agents" / "worker.py"


@dataclass(frozen=True)
class Spawned:
    session: SessionRecord
    pid: int
    log_path: str


async def build_manifest(
    store: Store,
    session: SessionRecord,
    project_root: Path,
    team: str = "",
    *,
    rules: RuleSet | None = None,
    adapter: Adapter | None = None,
) -> str:
    """The manifest of `session` as it stands now: identity, coordinator, team, tasks, steering, and
    what its CLI lets it do without asking (`rules`, translated by `adapter`)."""
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
        agents=sorted(adapters.definitions.available(project_root)),
        permissions=rules if adapter is not None and adapter.kind != "script" else None,
        scratch_tools=adapter.scratch_tools if adapter is not None else (),
    )
    return manifests.render(ctx, project_root)


def _check_manages(caller: SessionRecord, target: SessionRecord, verb: str) -> None:
    """Only the operator, or the coordinator that spawned it, may stop or respawn a worker."""
    if caller.role is Role.worker:
        raise Forbidden(
            f"Only a coordinator or the operator can {verb} a worker.",
            "Ask your coordinator: mail_send(to='coordinator', body=...).",
        )
    if caller.role is Role.coordinator and target.parent_id != caller.id:
        raise Forbidden(f"{target.name} is not your worker.", f"{verb.capitalize()} only workers you spawned.")


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
        config: Settings | None = None,
    ) -> None:
        self.store = store
        self.config = config or settings()
        self.sessions = sessions
        self.mail = mail
        self.tasks = tasks
        # Children are watched from `task_group`, which lives as long as this server process.
        self.spawner = Spawner(task_group, self.on_exit)
        self.project_root = project_root
        self.db = db
        self.base_env = dict(base_env if base_env is not None else os.environ)
        # Workers this process is ending: how their exit is to be reported (status, reason).
        self._stopping: dict[str, tuple[SessionStatus, str]] = {}
        # This process, which vouches for the workers it is spawning until their servers connect.
        self._spawner = (os.getpid(), host_name(self.config))

    async def manifest_for(
        self, session: SessionRecord, team: str = "", *, rules: RuleSet | None = None, adapter: Adapter | None = None
    ) -> str:
        return await build_manifest(self.store, session, self.project_root, team, rules=rules, adapter=adapter)

    # -- spawning -------------------------------------------------------------
    def _agent(self, agent: str) -> tuple[str, str | None]:
        kind, _, script = agent.partition(":")
        kind = kind.strip()
        if kind != "script":
            if script:
                raise InvalidArgument(
                    f"Agent {agent!r}: only script agents take a path after ':'.",
                    f"Pass agent={kind!r} alone, or agent='script:path/to/agent.py' for a script.",
                )
            return kind, None
        if not script:
            return kind, str(BUILTIN_WORKER)
        path = (self.project_root / script).resolve()
        if not path.is_relative_to(self.project_root.resolve()):
            raise InvalidArgument(f"Script {script!r} is outside the project.", "Use a path inside the project.")
        if not path.is_file():
            raise NotFound(f"No script at {path}.", "Give a path relative to the project root.")
        return kind, str(path)

    async def _check_room(self, coordinator_id: str, who: str) -> None:
        live = [s for s in await self.store.list_sessions(parent_id=coordinator_id, live=True) if s.role is Role.worker]
        if len(live) >= self.config.max_workers:
            raise Conflict(
                f"{who} {len(live)} live workers; the limit is {self.config.max_workers}.",
                "Wait for one to finish or stop_worker one (MAESTRO_MAX_WORKERS raises the limit).",
            )

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
        raise Conflict(f"No free worker name: {kind}-1 to {kind}-9999 are all taken.", "Pass name=... yourself.")

    async def _tasks_for(self, caller: SessionRecord, task_ids: Sequence[str]) -> list[TaskRecord]:
        found = await self.store.get_tasks(task_ids)
        missing = [t for t in task_ids if t not in found]
        if missing:
            raise NotFound(f"No task {', '.join(map(repr, missing))}.", "Use ids from task_list.")
        records = [found[t] for t in dict.fromkeys(task_ids)]
        for task in records:
            # A task reserved for the caller itself is the caller's to give (maestro run's scheduler
            # hands its reserved tasks over this way, with no moment in which anyone could take them).
            if task.status not in ASSIGNABLE or task.assignee_id not in (None, caller.id):
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
        budget_usd: float | None = None,
        max_turns: int | None = None,
    ) -> Spawned:
        if caller.role is not Role.coordinator:
            raise Forbidden(
                "Only a coordinator can spawn workers.", "Ask your coordinator: mail_send(to='coordinator', ...)."
            )
        if isolation not in ("shared", "worktree"):
            raise InvalidArgument(f"isolation={isolation!r} is not known.", "Use 'shared' or 'worktree'.")
        kind, script = self._agent(agent)
        adapter = adapters.load(kind, self.project_root)
        definition = adapter.definition
        defaults = project_config.load(self.project_root)
        budget = project_config.check_budget(budget_usd)
        budget = budget if budget is not None else defaults.budget_usd
        turns = project_config.check_turns(max_turns)
        turns = turns if turns is not None else defaults.max_turns
        if profile:
            manifests.profile_text(profile, self.project_root)  # refuse an unknown profile now
        # A policy file with an error is refused now too, before anything exists.
        rules = load_policy(self.project_root).for_profile(profile)
        await self._check_room(caller.id, "You already have")
        final_name = await self._name(name, kind)
        tasks = await self._tasks_for(caller, task_ids)
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
            rules=rules,
            budget_usd=budget,
            max_turns=turns,
            conversation_id=str(uuid.uuid4()) if adapter.names_conversations else "",
        )
        # The planner is pure: a draft with a placeholder identity refuses a definition that cannot be
        # planned, and a missing CLI, before anything (session, worktree, process) exists.
        draft = adapters.build_plan(request, adapter)
        resolve_binary(draft.argv[0], draft.env, definition.install)

        workspace, branch = self.project_root, None
        if isolation == "worktree":
            workspace, branch = await worktree.create(self.project_root, final_name)
        session: SessionRecord | None = None
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
                spawner=self._spawner,
                reserve=tasks,
            )
            session = registered.session
            launch = {"agent": agent, "model": model, "isolation": isolation, "profile": profile}
            await self.store.set_launch(session.id, launch, request.conversation_id or None)
            await self.store.set_limits(session.id, budget, turns)
            request = dataclasses.replace(
                request, session_id=session.id, token=registered.token, name=session.name, workspace=workspace
            )
            pid, plan = await self._start(session, request, adapter, rules)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._undo(session, pid, workspace if branch else None, branch)
            raise
        return await self._started(session, pid, plan)

    async def _start(
        self, session: SessionRecord, request: LaunchRequest, adapter: Adapter, rules: RuleSet
    ) -> tuple[int, LaunchPlan]:
        """Plan the session's launch (its manifest as it stands now) and start it."""
        manifest = await self.manifest_for(session, rules=rules, adapter=adapter)
        if request.restart_note:
            # In the manifest too: an agent that takes no prompt (a script) reads why it was restarted there.
            manifest = f"{request.restart_note}\n\n{manifest}"
        plan = adapters.build_plan(
            dataclasses.replace(
                request,
                manifest=manifest,
                hook_socket=hook_socket_path(self.project_root, session.id),
            ),
            adapter,
        )
        pid = await self.spawner.start(session.id, plan, adapter.definition.install)
        await self.store.set_process(session.id, pid, os.getpid(), plan.log_path)
        return pid, plan

    async def _started(self, session: SessionRecord, pid: int, plan: LaunchPlan) -> Spawned:
        self.spawner.task_group.start_soon(self._await_connect, session.id)
        record = await self.store.get_session(session.id)
        return Spawned(record or session, pid, plan.log_path)

    # -- respawning -----------------------------------------------------------
    async def respawn(
        self, caller: SessionRecord, key: str, directive: str = "", budget_usd: float | None = None
    ) -> Spawned:
        """Start an ended worker again as the same session (name, mailbox, the mail that waited), with its
        conversation where its CLI can resume one, in the same workspace; it takes back the tasks it held
        that nobody has claimed since."""
        budget = project_config.check_budget(budget_usd)
        target = await self.sessions.get(key)
        _check_manages(caller, target, "respawn")
        if target.live:
            raise Conflict(
                f"{target.name} is live ({target.status.value}).",
                "Mail it, or stop_worker it first and then respawn it.",
            )
        if target.parent_id is not None:
            await self._check_room(target.parent_id, f"{target.name}'s coordinator already has")
        stats = (await self.store.session_stats([target.id])).get(target.id)
        if stats is None or not stats.launch.get("agent"):
            raise Conflict(
                f"{target.name} was not started by spawn_worker, so there is nothing to start again.",
                "Spawn a new worker with spawn_worker.",
            )
        spent = stats.usage.cost_usd
        limit = budget if budget is not None else stats.budget_usd
        if limit is not None and spent >= limit:
            raise InvalidArgument(
                f"{target.name} has spent {money(stats.usage)} of its ${limit:.2f} budget.",
                f"Pass a larger budget_usd (above {spent:.2f}) to continue it.",
            )
        workspace = Path(target.workspace or self.project_root)
        if not await anyio.Path(workspace).is_dir():
            raise NotFound(
                f"{target.name}'s workspace {workspace} is gone.", "Spawn a new worker with spawn_worker instead."
            )
        launch = stats.launch
        kind, script = self._agent(str(launch["agent"]))
        adapter = adapters.load(kind, self.project_root)
        rules = load_policy(self.project_root).for_profile(target.profile)
        resume = adapter.resumable and bool(stats.conversation_id)
        note = await self._restart_note(caller, target, directive, resume)
        request = LaunchRequest(
            definition=adapter.definition,
            session_id=target.id,
            token="",
            name=target.name,
            manifest="",
            workspace=workspace,
            project_root=self.project_root,
            db=self.db,
            base_env=self.base_env,
            model=launch.get("model"),
            script=script,
            python=sys.executable,
            rules=rules,
            budget_usd=limit,
            max_turns=stats.max_turns,
            conversation_id=(stats.conversation_id or "") if resume else "",
            resume=resume,
            restart_note=note,
        )
        draft = adapters.build_plan(request, adapter)  # refuses a definition that cannot be planned, a missing CLI
        resolve_binary(draft.argv[0], draft.env, adapter.definition.install)
        session, token = await self.sessions.reissue(target, self._spawner)
        pid: int | None = None
        try:
            await self.store.count_restart(session.id)
            await self.store.set_limits(session.id, limit, stats.max_turns)
            await self.store.take_back_tasks(session.id)
            if not resume and adapter.names_conversations:
                request = dataclasses.replace(request, conversation_id=str(uuid.uuid4()))
                await self.store.set_launch(session.id, launch, request.conversation_id)
            pid, plan = await self._start(session, dataclasses.replace(request, token=token), adapter, rules)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._undo(session, pid, None, None)
            raise
        return await self._started(session, pid, plan)

    async def _restart_note(self, caller: SessionRecord, target: SessionRecord, directive: str, resume: bool) -> str:
        code = "" if target.exit_code is None else f", exit code {target.exit_code}"
        lines = [
            f"maestro: you are {target.name}, restarted by {caller.name} after you {target.status.value}{code}."
            + (" Your conversation so far is above." if resume else " Your earlier conversation could not be resumed.")
        ]
        if not resume:
            events = await self.store.last_activity(target.id, RESTART_EVENTS)
            if events:
                lines.append("What you were doing before (your last recorded actions):")
                lines += [f"- {e.kind.value}: {e.summary}" for e in events if e.summary]
        if directive.strip():
            lines.append(f"Your coordinator says: {directive.strip()}")
        lines.append("Call whoami for your tasks and mail (mail sent while you were down is waiting), then go on.")
        return "\n".join(lines)

    async def _undo(
        self,
        session: SessionRecord | None,
        pid: int | None,
        worktree_path: Path | None,
        branch: str | None,
    ) -> None:
        """Leave nothing half-created: no live session, no reserved task, no process, no worktree."""
        if pid is not None and session is not None:
            self._stopping[session.id] = (SessionStatus.failed, "spawn failed")
            await self.spawner.terminate(session.id, pid, STOP_KILL_GRACE_S)
        if session is not None:  # which also unassigns the tasks reserved for it
            attempts = self.sessions.max_attempts
            await self.store.end_session(session.id, SessionStatus.failed, None, max_attempts=attempts)
        if worktree_path is not None:
            await worktree.remove(self.project_root, worktree_path, branch)

    async def _await_connect(self, session_id: str) -> None:
        """A worker whose server never connects within the grace period is failed, and its process stopped."""
        grace = self.config.connect_grace_s
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
        self._stopping[session_id] = (SessionStatus.failed, reason)
        # Its process first: its coordinator is told once nothing of it runs (its exit ends it, with its code).
        if session.pid:
            await self.spawner.terminate(session_id, session.pid, STOP_KILL_GRACE_S)
        await self.sessions.end(session, SessionStatus.failed, None, reason)

    # -- exits ----------------------------------------------------------------
    async def on_exit(self, session_id: str, code: int) -> None:
        """The spawner saw a worker's process exit: end its session with the exit code."""
        session = await self.store.get_session(session_id)
        if session is None:
            return
        asked = self._stopping.pop(session_id, None)
        reason = asked[1] if asked is not None else None
        if asked is not None:
            status = asked[0]
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
        _check_manages(caller, target, "stop")
        if not target.live:
            return target
        why = reason.strip() or "your coordinator asked you to stop"
        self._stopping[target.id] = (SessionStatus.stopped, f"Stopped by {caller.name}: {why}")
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
            left = await self.spawner.terminate(target.id, target.pid, STOP_KILL_GRACE_S)
            if left:
                # Said plainly rather than "stopped": something of it still runs.
                raise Conflict(
                    f"{target.name} was sent SIGTERM and SIGKILL, but still runs: {describe_pids(left)}.",
                    "Those processes may belong to another user; stop them by hand.",
                )
        asked = self._stopping.get(target.id)
        await self.sessions.end(target, SessionStatus.stopped, None, asked[1] if asked else why)
        return await self.sessions.get(target.id)

    async def on_coordinator_end(self, coordinator: SessionRecord) -> None:
        """The coordinator is going away: tell its live workers, and stop them unless told to keep them."""
        children = await self.store.list_sessions(parent_id=coordinator.id, live=True)
        if not children:
            return
        keep = self.config.keep_workers  # MAESTRO_KEEP_WORKERS=1
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
