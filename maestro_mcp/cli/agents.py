"""Agent commands for humans: init (project MCP configs), launch, team, merge."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Annotated

import typer

from maestro_mcp import adapters
from maestro_mcp.adapters import FileWrite, LaunchRequest
from maestro_mcp.adapters.base import hook_socket_path, serve_binary
from maestro_mcp.adapters.settings import merge_settings
from maestro_mcp.cli.app import app, fail
from maestro_mcp.cli.common import operator, run, services_at
from maestro_mcp.cli.feed import follow_until_exit
from maestro_mcp.config import project_root_for, redact_url, store_location
from maestro_mcp.errors import InvalidArgument, MaestroError
from maestro_mcp.launch import worktree
from maestro_mcp.launch.spawner import command_of, open_log, resolve_binary, write_files
from maestro_mcp.manifest import profile_text
from maestro_mcp.models import Role, SessionStatus, TaskStatus
from maestro_mcp.plans import load_plan
from maestro_mcp.policy import load_policy
from maestro_mcp.service.workers import build_manifest

# The CLIs `maestro init` configures, in the order it reports them.
INIT_AGENTS = ("claude", "gemini", "codex")


def server_command() -> list[str]:
    """How project configs start the server: `maestro serve` when this install's `maestro` is on PATH
    (a config that works on every machine), else this interpreter by absolute path."""
    on_path = shutil.which("maestro")
    ours = Path(sys.executable).parent / "maestro"
    if on_path and Path(on_path).resolve() == ours.resolve():
        return ["maestro", "serve"]
    return [sys.executable, "-m", "maestro_mcp", "serve"]


def project_configs(root: Path) -> list[FileWrite]:
    """The MCP config each agent CLI reads from the project, merged into any the user already has."""
    command = server_command()
    return [f for kind in INIT_AGENTS for f in adapters.load(kind, None).project_config(root, command)]


def _plan_configs(root: Path) -> tuple[list[FileWrite], list[str]]:
    """What `init` writes, and one line per file for the user; a file we cannot merge stops everything."""
    writes: list[FileWrite] = []
    lines: list[str] = []
    for f in project_configs(root):
        path = Path(f.path)
        rel = path.relative_to(root)
        if not path.exists():
            writes.append(FileWrite(f.path, f.content))
            lines.append(f"wrote {rel}")
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"cannot read {rel}: {exc}. Fix it, then run `maestro init` again.") from None
        if f.merge_json:
            try:
                existing = json.loads(text)
                problem = "" if isinstance(existing, dict) else "it holds no JSON object"
            except ValueError as exc:
                problem = f"it is not valid JSON: {exc}"
            if problem:
                raise fail(
                    f"{rel} was left alone: {problem}. Fix it, then run `maestro init` again (the store is ready)."
                )
            merged = merge_settings(existing, json.loads(f.content))
            if merged == existing:
                lines.append(f"kept {rel} (already configured)")
            else:
                writes.append(FileWrite(f.path, json.dumps(merged, indent=2) + "\n"))
                lines.append(f"updated {rel} (merged into your settings)")
            continue
        # TOML is not merged: the user's own file is never rewritten.
        try:
            present = "maestro" in tomllib.loads(text).get("mcp_servers", {})
        except tomllib.TOMLDecodeError:
            present = False
        if present:
            lines.append(f"kept {rel} (already configured)")
        else:
            snippet = f.content.split("\n", 1)[1].rstrip()
            lines.append(f"kept {rel} (yours, not rewritten); to give Codex the maestro tools, add:\n{snippet}")
    return writes, lines


@app.command()
def init(
    configs: Annotated[bool, typer.Option(help="Also write the MCP config of Claude, Codex and Gemini.")] = True,
) -> None:
    """Create the project's store (.maestro/maestro.db) and the agent CLIs' project MCP configs."""

    async def body() -> tuple[str, int, Path]:
        location = store_location(create=True)
        async with services_at(location) as svc:
            return location, await svc.store.schema_version(), project_root_for(location)

    location, version, root = run(body)
    typer.echo(f"store: {redact_url(location)} (schema version {version})")
    worktree.ignore_state(root)
    if configs:
        writes, lines = _plan_configs(root)
        write_files(writes, root)
        for line in lines:
            typer.echo(line)
        command = server_command()[0]
        if command != "maestro":
            # The configs name this machine's interpreter: a teammate's clone must not get them.
            machine = [w for w in writes if command in w.content or serve_binary(command) in w.content]
            ignored = _ignore(root, [str(Path(w.path).relative_to(root)) for w in machine])
            if ignored:
                typer.echo(
                    f"`maestro` is not on PATH, so these configs name this machine's paths: {', '.join(ignored)}"
                    " (added to .gitignore). For configs to commit, activate the environment maestro is installed"
                    " in and run `maestro init` again."
                )
        ready = "claude, gemini" if any("to give Codex" in line for line in lines) else "claude, codex, gemini"
        typer.echo(f"agents started here ({ready}) now have the maestro tools.")


def _ignore(root: Path, rels: list[str]) -> list[str]:
    """Add `rels` to the project's .gitignore (those not already there); returns the ones added."""
    path = root / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    present = {line.strip().lstrip("/") for line in text.splitlines()}
    new = [rel for rel in rels if rel not in present]
    if new:
        block = "# written by `maestro init`: they name this machine's paths\n" + "".join(f"/{r}\n" for r in new)
        write_files([FileWrite(str(path), (text if text.endswith("\n") or not text else text + "\n") + block)], root)
    return new


def _launch(
    agent: str,
    *,
    role: Role,
    name: str | None,
    parent: str | None,
    plan: Path | None,
    headless: bool,
    model: str | None,
    directive: str,
    team: str = "",
) -> int:
    kind, _, script = agent.partition(":")
    script_path = str(Path(script).resolve()) if script else None

    async def prepare() -> tuple[list[str], dict[str, str], str, str, str, str]:
        # Like `status`, `launch` needs the project's store: `maestro init` makes it (and the git ignore).
        location = store_location(create=False)
        root = project_root_for(location)
        adapter = adapters.load(kind, root)
        definition = adapter.definition
        if role is Role.worker and parent is None:
            raise InvalidArgument("A worker needs --parent (its coordinator's name).")
        request = LaunchRequest(
            definition=definition,
            session_id="",
            token="",
            name=name or kind,
            manifest="",
            workspace=Path.cwd(),
            project_root=root,
            db=location,
            base_env=os.environ,
            mode="headless" if headless else "interactive",
            model=model,
            script=script_path,
            rules=load_policy(root).for_profile(None),
        )
        # The planner is pure: a plan with a placeholder identity refuses a bad mode or script and a
        # missing CLI before any task is imported or any session registered.
        draft = adapters.build_plan(request, adapter)
        resolve_binary(draft.argv[0], draft.env, definition.install)
        specs = load_plan(plan) if plan is not None else None
        async with services_at(location) as svc:
            if specs is not None:
                created = await svc.tasks.create(await operator(svc), specs)
                typer.echo(f"imported {len(created)} tasks from {plan}", err=True)
            registered = await svc.sessions.register(
                name=name,
                role=role,
                agent=kind,
                parent=parent,
                workspace=str(Path.cwd()),
                status=SessionStatus.spawning,
                directive=directive or None,
                spawner=(os.getpid(), svc.liveness.host),  # this command waits on the CLI it starts
            )
            session = registered.session
            launch = adapters.build_plan(
                dataclasses.replace(
                    request,
                    session_id=session.id,
                    token=registered.token,
                    name=session.name,
                    manifest=await build_manifest(svc.store, session, root, team, rules=request.rules, adapter=adapter),
                    coordinator=role is Role.coordinator,
                    hook_socket=hook_socket_path(root, session.id),
                ),
                adapter,
            )
            binary = resolve_binary(launch.argv[0], launch.env, definition.install)
            write_files(launch.files, root)
            return command_of(launch, binary), launch.env, launch.cwd, session.id, location, launch.log_path

    argv, env, cwd, session_id, location, log_path = run(prepare)
    typer.echo(f"maestro: starting {agent} as session {session_id}", err=True)
    if headless:
        code = _run_headless(argv, env, cwd, session_id, location, log_path)
    else:
        # The agent owns the terminal; Ctrl-C is for it, not for us.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            process = subprocess.Popen(argv, env=env, cwd=cwd)
            try:
                # The session's process is the CLI, watched by this command: `maestro stop` signals the CLI
                # and everything it started, and this command records its exit code.
                run(lambda: _record_process(location, session_id, process.pid))
            finally:
                code = process.wait()
        finally:
            signal.signal(signal.SIGINT, previous)

    async def finish() -> None:
        # The agent's own server normally ended the session; make sure, with the exit code.
        async with services_at(location) as svc:
            record = await svc.store.get_session(session_id)
            status = SessionStatus.exited if code == 0 else SessionStatus.failed
            if record is not None and record.status is SessionStatus.stopped:
                status = SessionStatus.stopped  # `maestro stop` asked for it: not a crash
            if record is not None and record.live:
                await svc.sessions.end(record, status, code, "Its `maestro launch` returned.")
            elif record is not None and record.exit_code is None:
                # Its server ended it first, without knowing the CLI's exit code: record it.
                keep = record.status if record.status is not SessionStatus.exited else status
                await svc.store.set_exit_code(session_id, code, keep)

    run(finish)
    return code


def _run_headless(argv: list[str], env: dict[str, str], cwd: str, session_id: str, location: str, log: str) -> int:
    """A headless agent's own output (JSON events) goes to its log; the terminal gets a readable feed."""
    typer.echo(f"maestro: its output goes to {log}; here, what happens:", err=True)
    with open_log(Path(log), project_root_for(location)) as out:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:

        async def feed() -> None:
            await _record_process(location, session_id, process.pid)
            async with services_at(location) as svc:
                await follow_until_exit(svc, process.pid)

        run(feed, interrupted="interrupted; the agent was stopped.")
    finally:
        if process.poll() is None:
            process.terminate()
        code = process.wait()
    return code


async def _record_process(location: str, session_id: str, pid: int) -> None:
    async with services_at(location) as svc:
        await svc.store.set_process(session_id, pid, os.getpid(), None)


@app.command()
def launch(
    agent: Annotated[str, typer.Argument(help="claude | codex | gemini | script:PATH | a project launcher.")],
    role: Annotated[Role, typer.Option(help="Role of the new session.")] = Role.coordinator,
    plan: Annotated[Path | None, typer.Option(help="Import this plan's tasks first.")] = None,
    name: Annotated[str | None, typer.Option(help="Session name (generated if omitted).")] = None,
    parent: Annotated[str | None, typer.Option(help="Coordinator of a worker.")] = None,
    headless: Annotated[bool, typer.Option(help="Run the CLI's non-interactive mode.")] = False,
    model: Annotated[str | None, typer.Option(help="Model for the agent CLI.")] = None,
    directive: Annotated[str, typer.Option(help="What this agent is for.")] = "",
) -> None:
    """Start an agent CLI in this terminal with maestro wired in and its manifest."""
    raise typer.Exit(
        _launch(
            agent,
            role=role,
            name=name,
            parent=parent,
            plan=plan,
            headless=headless,
            model=model,
            directive=directive,
        )
    )


@app.command()
def team(
    agent: Annotated[str, typer.Option(help="Agent CLI for the coordinator and its workers.")] = "claude",
    dev: Annotated[int, typer.Option(help="Developers to spawn.")] = 2,
    review: Annotated[int, typer.Option(help="Reviewers to spawn.")] = 0,
    test: Annotated[int, typer.Option(help="Testers to spawn.")] = 0,
    plan: Annotated[Path | None, typer.Option(help="Import this plan's tasks first.")] = None,
    name: Annotated[str | None, typer.Option(help="Coordinator name.")] = None,
    headless: Annotated[bool, typer.Option(help="Run the coordinator headless.")] = False,
    directive: Annotated[str, typer.Option(help="What the team is for.")] = "",
) -> None:
    """Start a coordinator whose manifest asks it to spawn a team (role profiles dev, review, test)."""
    wanted = [(n, p) for n, p in ((dev, "dev"), (review, "review"), (test, "test")) if n > 0]
    if not wanted:
        raise fail("ask for at least one worker (--dev, --review or --test)")
    for _, profile in wanted:
        try:
            profile_text(profile, None)
        except MaestroError as exc:
            raise fail(str(exc)) from None
    lines = [
        f"- spawn {n} worker(s) with spawn_worker(agent={agent!r}, profile={p!r}, directive=...)" for n, p in wanted
    ]
    text = "Build this team first, then coordinate it:\n" + "\n".join(lines)
    raise typer.Exit(
        _launch(
            agent,
            role=Role.coordinator,
            name=name,
            parent=None,
            plan=plan,
            headless=headless,
            model=None,
            directive=directive,
            team=text,
        )
    )


@app.command()
def merge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be merged, in order.")] = False,
) -> None:
    """Merge the branches of finished worktree workers in dependency order; stop at the first conflict."""

    async def body() -> int:
        location = store_location(create=False)
        root = project_root_for(location)
        async with services_at(location) as svc:
            candidates = [
                s for s in await svc.store.list_sessions(role=Role.worker) if s.isolation == "worktree" and s.branch
            ]
            order: list[tuple[int, str, str, list[str], str]] = []
            for session in candidates:
                tasks = await svc.store.list_tasks(assignee_id=session.id)
                done = [t for t in tasks if t.status is TaskStatus.done]
                if not done or session.live:
                    continue  # nothing finished, or still working: not ready to merge
                wave = min(t.wave for t in done)
                names = [f"{t.id} ({t.title})" for t in done]
                order.append((wave, session.name, session.branch or "", names, session.workspace or ""))
            order.sort()
            if not order:
                typer.echo("nothing to merge: no finished worktree worker with done tasks")
                return 0
            for wave, name, branch, task_names, tree in order:
                typer.echo(f"wave {wave}: {branch} ({name}): {', '.join(task_names)}")
                left = await worktree.uncommitted(Path(tree)) if tree else []
                if left:
                    typer.echo(
                        f"  warning: {name} left uncommitted changes in {tree} (not merged): {', '.join(left)}",
                        err=True,
                    )
                if dry_run:
                    continue
                conflicts = await worktree.merge(root, branch)
                if conflicts:
                    typer.echo(
                        f"conflict merging {branch} from {name} in: {', '.join(conflicts)}\n"
                        f"tasks involved: {', '.join(task_names)}\n"
                        f"the merge was aborted; resolve it by hand (git merge {branch}), then run maestro merge again",
                        err=True,
                    )
                    return 1
                typer.echo(f"  merged {branch}")
            return 0

    raise typer.Exit(run(body))
