"""Watching and steering: status, watch, sessions, mail, steer, stop."""

from __future__ import annotations

import json
from typing import Annotated

import anyio
import typer
from rich.console import Console
from rich.live import Live

from maestro_mcp.cli.app import app, fail
from maestro_mcp.cli.common import on_terminal, operator, print_table, run, services, workers
from maestro_mcp.errors import InvalidArgument
from maestro_mcp.models import Priority
from maestro_mcp.store import ALL
from maestro_mcp.view import collect, follow, render


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Never cut a cell short (the default when piped).")] = False,
) -> None:
    """Sessions, the plan by wave, and the latest mail and events, once."""

    async def body() -> None:
        async with services() as svc:
            current = await collect(svc)
        if as_json:
            typer.echo(json.dumps(current.to_json(), indent=2))
        else:
            # On a terminal the view fits its width; piped (or --full) nothing is cut short.
            Console(width=None if on_terminal() and not full else 250).print(render(current))

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
        run(body, interrupted="stopped watching (nothing was changed).")
    except typer.Exit as exc:
        if exc.exit_code != 130:
            raise


@app.command()
def sessions(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Never cut a cell short (the default when piped).")] = False,
) -> None:
    """Every session with role, status and liveness."""

    async def body() -> None:
        async with services() as svc:
            infos = await svc.sessions.list_infos()
        if as_json:
            typer.echo(json.dumps([s.model_dump(mode="json") for s in infos], indent=2))
            return
        rows = [
            [s.name, s.session_id, s.role.value, s.agent, s.parent or "", s.status.value, str(s.live),
             "" if s.exit_code is None else str(s.exit_code)]
            for s in infos
        ]  # fmt: skip
        print_table(["name", "id", "role", "agent", "parent", "status", "live", "exit"], rows, full=full)

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
        async with workers() as (svc, worker_service):
            record = await worker_service.stop(await operator(svc), session, reason, grace)
        return f"{record.name} is {record.status.value}"

    typer.echo(run(body))
