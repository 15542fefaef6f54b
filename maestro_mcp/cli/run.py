"""`maestro run PLAN`: a plan run by maestro's own scheduler, waited for like a build (docs/run.md).

Also `maestro run status ID` and `maestro run wait ID` for runs started with --async.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import anyio
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from maestro_mcp.cli.app import app, fail
from maestro_mcp.cli.common import on_terminal, services, services_at
from maestro_mcp.cli.common import run as run_body
from maestro_mcp.config import project_root_for, settings, store_location
from maestro_mcp.errors import InvalidArgument, MaestroError
from maestro_mcp.ids import new_id
from maestro_mcp.launch.spawner import pid_alive
from maestro_mcp.models import SessionStatus, TaskStatus, now
from maestro_mcp.plans import PlanError
from maestro_mcp.runplan import load_run_plan, parse_params
from maestro_mcp.server.heartbeat import beat_forever
from maestro_mcp.service import Services
from maestro_mcp.service import runs as runs_service
from maestro_mcp.service.runs import RunRecord
from maestro_mcp.service.scheduler import Outcome, Progress, Scheduler, describe
from maestro_mcp.service.workers import WorkerService

START_S = 60.0
"""How long `--async` waits for the background scheduler to have stored the run."""
ACTIONS = ("status", "wait")


class Display:
    """The live view of a --sync run: rich on a terminal, one line per change when piped."""

    def __init__(self, record: RunRecord, live: Live | None) -> None:
        self.record = record
        self.live = live
        self.last: tuple[int, int, int] | None = None
        self.announced: set[str] = set()
        self.started = now()

    def __call__(self, progress: Progress) -> None:
        if self.live is not None:
            self.live.update(self.render(progress))
            return
        key = (progress.done, len(progress.failed), progress.crashes)
        if key != self.last:
            self.last = key
            failed = f", failed: {', '.join(progress.failed)}" if progress.failed else ""
            crashes = f", {progress.crashes} crash(es)" if progress.crashes else ""
            typer.echo(f"run {self.record.id}: {progress.done}/{progress.total} done{failed}{crashes}")
        for line in progress.approvals:
            if line not in self.announced:
                self.announced.add(line)
                typer.echo(f"approval waiting (maestro approve ID / deny ID): {line}")

    def render(self, progress: Progress) -> Group:
        head = Text(
            f"run {self.record.id}  {progress.done}/{progress.total} done"
            f"  {len(progress.failed)} failed  {progress.crashes} crash(es)  {now() - self.started:.0f} s"
            f"  spend: {progress.spend}",
            style="bold",
        )
        table = Table("worker", "status", "current action", "spend", box=None)
        for name, status, action, spend in progress.workers:
            table.add_row(name, status, action, spend)
        parts: list[Text | Table] = [head, table]
        if progress.approvals:
            parts.append(Text(f"{len(progress.approvals)} approval(s) wait for you (maestro approve ID / deny ID):"))
            parts += [Text(f"  {line}") for line in progress.approvals]
        return Group(*parts)


def _plan_label(plan: Path, root: Path) -> str:
    resolved = plan.resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(resolved)


async def _scheduled(
    svc: Services, location: str, record: RunRecord, me_id: str, quiet: bool, max_crashes: int | None
) -> tuple[Outcome, RunRecord]:
    """Run the scheduler until the run ends, Ctrl-C or SIGTERM stops it, or its timeout passes."""
    root = project_root_for(location)
    me = await svc.sessions.get(me_id)
    status: str | None = None
    async with anyio.create_task_group() as tg:
        await svc.store.listen(me.id, tg)
        # Beats like a serve process: killed (SIGKILL, a CI job cancelled), its session is ended by the
        # next sweep of any server of the project, and the tasks reserved for it are freed.
        tg.start_soon(beat_forever, svc, lambda: me)
        workers = WorkerService(svc.store, svc.sessions, svc.mail, svc.tasks, tg, project_root=root, db=location)
        use_rich = on_terminal() and not quiet
        console = Console()
        with Live(console=console, refresh_per_second=4, transient=False) if use_rich else _nothing() as live:
            display = Display(record, live if use_rich else None)
            scheduler = Scheduler(
                svc, workers, record, me, max_crashes=max_crashes, on_progress=None if quiet else display
            )
            outcome: Outcome | None = None
            with anyio.CancelScope() as scope:

                async def on_signal() -> None:
                    nonlocal status
                    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                        async for _ in signals:
                            status = "stopped"
                            scope.cancel()
                            return

                tg.start_soon(on_signal)
                with anyio.move_on_after(record.timeout_s if record.timeout_s else float("inf")) as timer:
                    outcome = await scheduler.run()
                if timer.cancelled_caught:
                    status = "timed_out"
        with anyio.CancelScope(shield=True):
            if outcome is None:
                why = "stopped by Ctrl-C" if status == "stopped" else f"timed out after {record.timeout_s:g} s"
                outcome = Outcome(status or "stopped", f"{why}; resume with `maestro run {record.plan} --resume`")
            await scheduler.stop_all(f"the run {outcome.status}")
            current = await svc.store.get_session(me.id)
            if current is not None and current.live:
                await svc.sessions.end(current, SessionStatus.exited, 0, f"run {outcome.status}")
            final = scheduler.record.model_copy(
                update={"status": outcome.status, "ended_at": now(), "summary": describe(outcome)}
            )
            await runs_service.save(svc, final)
        tg.cancel_scope.cancel()
    assert outcome is not None  # set above, after the scheduler returned or was stopped
    return outcome, final


class _nothing:
    """Like contextlib.nullcontext, where a Live would be."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def _background(argv: list[str], log: Path) -> None:
    """The scheduler of an --async run, detached: its own session, so the shell's Ctrl-C does not reach it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        # An argument list of our own interpreter, never a shell string.
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _exit_for(outcome_status: str) -> int:
    return {"done": 0, "stopped": 130}.get(outcome_status, 1)


@app.command("run")
def run_plan(
    plan: Annotated[str, typer.Argument(help="A plan (.yaml, .json, .md), or `status` / `wait` with a run id.")],
    run_id: Annotated[str | None, typer.Argument(help="The run id, after `status` or `wait`.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="KEY=VALUE for {{ params.KEY }}.")] = None,
    agent: Annotated[str, typer.Option(help="Worker agent: claude, codex, gemini, script[:path].")] = "claude",
    workers: Annotated[int, typer.Option(help="Workers at once.")] = 3,
    sync: Annotated[bool, typer.Option("--sync/--async", help="Wait with a live display, or return the id.")] = True,
    timeout: Annotated[float | None, typer.Option(help="Stop the run after S seconds (resumable).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the last stopped or failed run.")] = False,
    resume_from: Annotated[
        str | None, typer.Option("--resume-from", help="Resume, running this task (key) and its dependents again.")
    ] = None,
    max_crashes: Annotated[
        int | None, typer.Option(help="Worker crashes before the run gives up (default: 2 x workers, at least 3).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's record as JSON at the end.")] = False,
    given_id: Annotated[str | None, typer.Option("--run-id", hidden=True)] = None,
) -> None:
    """Run a plan with maestro's own scheduler: up to N workers, each handed a ready task. Exits 0 when
    every task is done, else non-zero naming the failed tasks (`--resume` continues).

    `maestro run status ID` shows a run; `maestro run wait ID` waits for it and exits like --sync.
    """
    if plan in ACTIONS and run_id is not None:
        _action(plan, run_id, as_json, timeout)
        return
    if run_id is not None:
        raise fail(f"Unexpected argument {run_id!r}.", 2)
    try:
        runs_service.check_options(workers, timeout, settings().max_workers)
        params = parse_params(param or [])
    except MaestroError as exc:
        raise fail(str(exc), 2) from None
    path = Path(plan)
    resume = resume or resume_from is not None

    if not sync:
        _start_async(path, params, agent, workers, timeout, resume, max_crashes, resume_from)
        return

    async def body() -> tuple[Outcome, RunRecord] | PlanError:
        location = store_location(create=True)
        root = project_root_for(location)
        label = _plan_label(path, root)
        async with services_at(location) as svc:
            if resume:
                previous = await runs_service.latest_for(svc, label)
                if previous is None:
                    raise InvalidArgument(f"No earlier run of {label} to resume.", "Run it without --resume first.")
                if previous.status == "running" and not pid_alive(previous.pid):
                    previous = previous.model_copy(update={"status": "stopped"})  # its scheduler died
                record, me = await runs_service.reopen(svc, previous, resume_from)
            else:
                state = {e.key: e.value for e in await svc.state.listed()}
                try:
                    checked = load_run_plan(path, params, state, root, agent)
                except PlanError as exc:
                    return exc
                record = await runs_service.create_run(
                    svc,
                    checked,
                    params=params,
                    agent=agent,
                    workers=workers,
                    timeout_s=timeout,
                    plan_label=label,
                    run_id=given_id,
                )
                assert record.coordinator is not None
                me = await svc.sessions.get(record.coordinator)
            if not as_json:
                typer.echo(f"run {record.id}: {len(record.task_ids)} tasks, up to {record.workers} workers")
            return await _scheduled(svc, location, record, me.id, as_json, max_crashes)

    done = run_body(body)
    if isinstance(done, PlanError):
        raise fail(str(done), 2)
    outcome, final = done
    if as_json:
        typer.echo(runs_service.record_json(final))
    else:
        typer.echo(describe(outcome))
    raise typer.Exit(_exit_for(outcome.status))


def _start_async(
    path: Path,
    params: dict[str, str],
    agent: str,
    workers: int,
    timeout: float | None,
    resume: bool,
    max_crashes: int | None,
    resume_from: str | None = None,
) -> None:
    plan_path = path.resolve()

    async def body() -> str | PlanError:
        location = store_location(create=True)
        root = project_root_for(location)
        async with services_at(location) as svc:
            if not resume:
                state = {e.key: e.value for e in await svc.state.listed()}
                try:
                    load_run_plan(path, params, state, root, agent)  # refused here, before anything starts
                except PlanError as exc:
                    return exc
            previous = await runs_service.latest_for(svc, _plan_label(path, root)) if resume else None
            if resume and previous is None:
                raise InvalidArgument(f"No earlier run of {path} to resume.", "Run it without --resume first.")
            run_id = previous.id if previous else new_id("run")
            argv = [sys.executable, "-m", "maestro_mcp", "run", str(plan_path), "--sync", "--json"]
            argv += ["--agent", agent, "--workers", str(workers), "--run-id", run_id]
            argv += [a for k, v in params.items() for a in ("--param", f"{k}={v}")]
            if timeout is not None:
                argv += ["--timeout", str(timeout)]
            if max_crashes is not None:
                argv += ["--max-crashes", str(max_crashes)]
            if resume:
                argv.append("--resume")
            if resume_from is not None:
                argv += ["--resume-from", resume_from]
            log = root / ".maestro" / "logs" / f"{run_id}.log"
            entry = await svc.state.get(runs_service.RUN_KEY.format(run_id))
            after = entry.version if entry else 0
            _background(argv, log)
            got = await svc.state.get(runs_service.RUN_KEY.format(run_id), wait_s=START_S, after_version=after)
            if got is None or got.version <= after:
                raise MaestroError(
                    f"The run's scheduler did not start within {START_S:.0f} s.", f"Its output is in {log}."
                )
            return run_id

    started = run_body(body)
    if isinstance(started, PlanError):
        raise fail(str(started), 2)
    typer.echo(started)


def _action(action: str, run_id: str, as_json: bool, timeout: float | None) -> None:
    async def body() -> tuple[RunRecord, str]:
        async with services() as svc:
            record = await runs_service.load(svc, run_id)
            if action == "wait":
                record = await _wait(svc, record, timeout)
            return record, await _status_text(svc, record)

    record, text = run_body(body)
    typer.echo(runs_service.record_json(record) if as_json else text)
    if action == "wait":
        raise typer.Exit(_exit_for(record.status))


async def _wait(svc: Services, record: RunRecord, limit_s: float | None) -> RunRecord:
    key = runs_service.RUN_KEY.format(record.id)
    deadline = anyio.current_time() + (limit_s if limit_s is not None else float("inf"))
    seen = 0  # the record's version last read: each wait is for a newer one, not a spin on this one
    while record.status == "running":
        if not pid_alive(record.pid):
            # It may have saved its final record and exited, or been resumed by another process, since.
            entry = await svc.state.get(key)
            latest = RunRecord.model_validate_json(entry.value) if entry is not None else record
            if latest.status == "running" and latest.pid == record.pid:
                return record.model_copy(update={"status": "stopped", "summary": "its scheduler process is gone"})
            record = latest
            continue
        left = deadline - anyio.current_time()
        if left <= 0:
            raise MaestroError(f"Run {record.id} is still running after {limit_s:g} s.", "Wait again, or stop it.")
        entry = await svc.state.get(key, wait_s=min(left, 5.0), after_version=seen)
        if entry is not None:
            seen = entry.version
            record = RunRecord.model_validate_json(entry.value)
    return record


async def _status_text(svc: Services, record: RunRecord) -> str:
    tasks = await svc.store.get_tasks(record.task_ids)
    counts: dict[str, int] = {}
    for task in tasks.values():
        counts[task.status.value] = counts.get(task.status.value, 0) + 1
    status = record.status
    if status == "running" and not pid_alive(record.pid):
        status = "stopped (its scheduler process is gone; --resume continues it)"
    done = counts.get(TaskStatus.done.value, 0)
    lines = [
        f"run {record.id} ({record.plan}): {status}",
        f"  {done}/{len(tasks)} done; " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
    ]
    if record.coordinator:
        live = await svc.store.list_sessions(parent_id=record.coordinator, live=True)
        for worker in live:
            lines.append(f"  worker {worker.name}: {worker.status.value}")
    if record.summary:
        lines.append(record.summary)
    return "\n".join(lines)
