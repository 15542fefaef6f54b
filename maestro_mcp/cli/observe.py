"""Watching and steering: status, watch, sessions, mail, steer, stop, export, import."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import anyio
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from maestro_mcp.cli.app import app, fail
from maestro_mcp.cli.common import operator, run, services
from maestro_mcp.config import project_root_for, store_location
from maestro_mcp.errors import InvalidArgument
from maestro_mcp.models import Priority
from maestro_mcp.service import snapshot
from maestro_mcp.service.workers import WorkerService
from maestro_mcp.store import ALL
from maestro_mcp.view import collect, follow, render


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Sessions, the plan by wave, and the latest mail and events, once."""

    async def body() -> None:
        async with services() as svc:
            current = await collect(svc)
        if as_json:
            typer.echo(json.dumps(current.to_json(), indent=2))
        else:
            Console().print(render(current))

    run(body)


@app.command()
def watch() -> None:
    """A live view that redraws whenever the store changes (Ctrl-C to leave)."""

    async def body() -> None:
        async with services() as svc, anyio.create_task_group() as tg:
            await svc.store.listen(ALL, tg)
            with Live(render(await collect(svc)), refresh_per_second=8) as live:
                await follow(svc, lambda status: live.update(render(status)))

    try:
        run(body)
    except typer.Exit as exc:
        if exc.exit_code != 130:
            raise
        typer.echo("")


@app.command()
def sessions(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Every session with role, status and liveness."""

    async def body() -> None:
        async with services() as svc:
            infos = await svc.sessions.list_infos()
        if as_json:
            typer.echo(json.dumps([s.model_dump(mode="json") for s in infos], indent=2))
            return
        table = Table("name", "id", "role", "agent", "parent", "status", "live", "exit", box=None)
        for s in infos:
            exit_code = "" if s.exit_code is None else str(s.exit_code)
            table.add_row(
                s.name, s.session_id, s.role.value, s.agent, s.parent or "", s.status.value, str(s.live), exit_code
            )
        Console().print(table)

    run(body)


mail_app = typer.Typer(help="Read and send mail as the operator.")
app.add_typer(mail_app, name="mail")


@mail_app.command("ls")
def mail_ls(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many of the newest messages.")] = 20,
) -> None:
    """The newest mail of the whole project with each recipient's receipt (does not mark anything read)."""

    async def body() -> None:
        async with services() as svc:
            for m in reversed(await svc.store.recent_messages(limit)):
                receipts = ", ".join(f"{r.name}:{r.status.value}" for r in m.receipts)
                typer.echo(
                    f"{m.created_at} {m.message_id} [{m.type.value}/{m.priority.value}] {m.sender} -> "
                    f"{receipts}: {m.subject or m.body[:80]}"
                )

    run(body)


@mail_app.command("send")
def mail_send(
    to: Annotated[str, typer.Argument(help="A session name or id, or coordinator|children|all.")],
    body_text: Annotated[str, typer.Argument(metavar="BODY", help="The message.")],
    subject: Annotated[str, typer.Option(help="Subject line.")] = "",
    priority: Annotated[Priority, typer.Option(help="critical | high | normal | low")] = Priority.normal,
    reply_to: Annotated[str | None, typer.Option(help="Message id you answer.")] = None,
) -> None:
    """Send mail as the operator."""

    async def body() -> str:
        async with services() as svc:
            me = await operator(svc)
            targets = [t.strip() for t in to.split(",")] if "," in to else to
            sent = await svc.mail.send(me, targets, body_text, subject=subject, priority=priority, reply_to=reply_to)
            return f"sent {sent.message_id} to {', '.join(sent.recipients)}" + "".join(
                f"\nwarning: {w}" for w in sent.warnings
            )

    typer.echo(run(body))


@mail_app.command("thread")
def mail_thread(thread_id: Annotated[str, typer.Argument(help="A thread id (the first message's id).")]) -> None:
    """A whole conversation with every recipient's receipt."""

    async def body() -> None:
        async with services() as svc:
            for m in await svc.mail.thread(await operator(svc), thread_id):
                typer.echo(f"{m.created_at} {m.message_id} {m.sender} [{m.priority.value}] {m.subject}")
                typer.echo("  " + m.body.replace("\n", "\n  "))
                for r in m.receipts:
                    when = r.acked_at or r.delivered_at or ""
                    typer.echo(f"    -> {r.name}: {r.status.value} {when}")

    run(body)


@app.command()
def steer(
    text: Annotated[str | None, typer.Argument(help="What the agents should do differently.")] = None,
    to: Annotated[str | None, typer.Option(help="One session (default: everyone).")] = None,
    everyone: Annotated[bool, typer.Option("--all", help="Every live session (the default).")] = False,
    priority: Annotated[bool, typer.Option("--priority", help="Mark it as a priority directive.")] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Clear directive TEXT (an id), or all of them.")] = False,
) -> None:
    """Steer the agents: a directive shown in whoami and every manifest, delivered as critical mail."""
    if to is not None and everyone:
        raise fail("use either --to SESSION or --all", 2)

    async def body() -> str:
        async with services() as svc:
            if clear:
                cleared = await svc.steering.clear(text)
                return f"cleared {cleared} directive(s)"
            if not text:
                raise InvalidArgument("Say what to steer: maestro steer 'TEXT' [--to SESSION].")
            steered = await svc.steering.steer(await operator(svc), text, to, priority)
            who = ", ".join(steered.recipients) or "nobody live yet (it is kept for sessions to come)"
            return f"directive {steered.directive_id} sent to {who}"

    typer.echo(run(body))


@app.command()
def stop(
    session: Annotated[str, typer.Argument(help="The session (name or id) to stop.")],
    reason: Annotated[str, typer.Option(help="Why; the agent reads it.")] = "stopped by the operator",
    grace: Annotated[float, typer.Option(help="Seconds before SIGTERM.")] = 10.0,
) -> None:
    """Stop an agent: a critical mail with the reason, SIGTERM after the grace period, then SIGKILL."""

    async def body() -> str:
        location = store_location(create=False)
        async with services() as svc, anyio.create_task_group() as tg:
            workers = WorkerService(
                svc.store, svc.sessions, svc.mail, svc.tasks, tg, project_root=project_root_for(location), db=location
            )
            record = await workers.stop(await operator(svc), session, reason, grace)
            tg.cancel_scope.cancel()
        return f"{record.name} is {record.status.value}"

    typer.echo(run(body))


@app.command("export")
def export_store(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write (default: stdout).")] = None,
) -> None:
    """Write a JSON snapshot of the whole store: sessions, tasks, mail with receipts, reports, directives."""

    async def body() -> str:
        async with services() as svc:
            return json.dumps(await snapshot.export(svc.store), indent=1) + "\n"

    text = run(body)
    if output is None:
        sys.stdout.write(text)
        return
    # Written beside the target and renamed into place: an interrupted export never leaves half a file.
    partial = output.with_name(f".{output.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(output)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise fail(f"cannot write {output}: {exc.strerror or exc}") from None
    typer.echo(f"wrote {output}", err=True)


@app.command("import")
def import_store(
    source: Annotated[Path, typer.Argument(help="A file written by `maestro export`.")],
    force: Annotated[bool, typer.Option(help="Replace a store that is not empty.")] = False,
) -> None:
    """Restore a snapshot into this project's store (refused over a non-empty store without --force)."""
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {source}: {exc}") from None

    async def body() -> str:
        doc = snapshot.parse(text, str(source))
        async with services(create=True) as svc:
            counts = await snapshot.restore(svc.store, doc, force=force)
        return "imported " + ", ".join(f"{n} {table}" for table, n in counts.items())

    typer.echo(run(body))
