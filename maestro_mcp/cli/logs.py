"""What a worker does and spends: `maestro logs WORKER`, and `maestro respawn WORKER` to start it again."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import anyio
import typer

from maestro_mcp.activity import Redactor
from maestro_mcp.cli.app import app
from maestro_mcp.cli.common import operator, run, services, workers
from maestro_mcp.config import SAFETY_POLL_S
from maestro_mcp.errors import NotFound
from maestro_mcp.models import ActivityEvent, ActivityKind, SessionRecord, SessionStats
from maestro_mcp.service import Services
from maestro_mcp.service.activity import money, tokens
from maestro_mcp.store import ALL
from maestro_mcp.store.activity import activity_topic

MARK = {
    ActivityKind.start: "▶",
    ActivityKind.turn: "💬",
    ActivityKind.tool_call: "→",
    ActivityKind.usage: "$",
    ActivityKind.error: "!",
    ActivityKind.exit: "■",
}
RAW_CHUNK = 64 * 1024


def readable(event: ActivityEvent) -> str:
    at = datetime.fromtimestamp(event.at).strftime("%H:%M:%S")
    if event.kind is ActivityKind.tool_result:
        mark = "✓" if event.ok else "✗"
        return f"{at}   {mark} {event.summary}".rstrip()
    return f"{at} {MARK.get(event.kind, ' ')} {event.summary or event.kind.value}".rstrip()


def header(session: SessionRecord, stats: SessionStats | None) -> str:
    line = f"{session.name} ({session.agent}, {session.status.value})"
    if stats is None:
        return line + ": no activity recorded"
    budget = f" of ${stats.budget_usd:.2f}" if stats.budget_usd is not None else ""
    line += f": {money(stats.usage)}{budget}, {tokens(stats.usage)}, {stats.usage.turns} turns"
    if stats.dropped:
        line += f"; {stats.dropped} older events dropped from the window (the raw log has them)"
    if stats.skipped or stats.lost:
        line += f"; {stats.skipped} output lines skipped, {stats.lost} events lost"
    return line


async def _worker(svc: Services, key: str) -> SessionRecord:
    session = await svc.store.get_session(key)
    if session is None:
        raise NotFound(f"No session {key!r}.", "`maestro sessions` lists them, with their names.")
    return session


@app.command()
def logs(
    worker: Annotated[str, typer.Argument(help="The session (name or id).")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new activity until it ends.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event.")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="The CLI's own output, from its log file (redacted).")] = False,
    lines: Annotated[int, typer.Option("-n", "--lines", min=0, help="How many recent events to start with.")] = 20,
) -> None:
    """A worker's activity: model turns, tool calls and results, usage, errors, exit; redacted."""

    async def body() -> None:
        async with services() as svc, anyio.create_task_group() as tg:
            session = await _worker(svc, worker)
            if raw:
                await _raw(svc, session, follow)
            else:
                if follow:
                    await svc.store.listen(ALL, tg)  # hear the relay's wake-ups from its process
                await _events(svc, session, follow, as_json, lines)
            tg.cancel_scope.cancel()

    run(body, interrupted="stopped following.")


async def _events(svc: Services, session: SessionRecord, follow: bool, as_json: bool, lines: int) -> None:
    store = svc.store
    async with store.subscribe(activity_topic(session.id)) as bell:
        stats = (await store.session_stats([session.id])).get(session.id)
        if not as_json:
            typer.echo(header(session, stats))
        shown = await store.last_activity(session.id, lines) if lines else []
        after = shown[-1].seq if shown else (stats.events if stats else 0)
        while True:
            for event in shown:
                typer.echo(json.dumps(event.model_dump(mode="json")) if as_json else readable(event), nl=True)
            if not follow:
                return
            current = await store.get_session(session.id)
            shown = await store.activity(session.id, after=after)
            if shown:
                after = shown[-1].seq
                continue
            if current is None or not current.live:
                if not as_json:
                    typer.echo(f"— {session.name} has {current.status.value if current else 'gone'}")
                return
            await bell.wait(SAFETY_POLL_S)


async def _raw(svc: Services, session: SessionRecord, follow: bool) -> None:
    if not session.log_path:
        raise NotFound(f"{session.name} has no log file (it was not started by maestro).")
    path = Path(session.log_path)
    redact = Redactor(os.environ)
    try:
        handle = await anyio.open_file(path, "rb")
    except FileNotFoundError as exc:
        raise NotFound(f"{session.name}'s log {path} does not exist (yet).") from exc
    async with handle, svc.store.subscribe(activity_topic(session.id)) as bell:
        while True:
            chunk = await handle.read(RAW_CHUNK)
            if chunk:
                typer.echo(redact(chunk.decode("utf-8", errors="replace")), nl=False)
                continue
            if not follow:
                return
            current = await svc.store.get_session(session.id)
            if current is None or not current.live:
                return
            await bell.wait(SAFETY_POLL_S)


@app.command()
def respawn(
    worker: Annotated[str, typer.Argument(help="The ended worker (name or id).")],
    directive: Annotated[str, typer.Option(help="What to tell it first.")] = "",
    budget: Annotated[float | None, typer.Option(help="A new budget in USD.")] = None,
) -> None:
    """Start an ended worker again as the same session, with its conversation where its CLI resumes one."""

    async def body() -> str:
        async with workers() as (svc, worker_service):
            spawned = await worker_service.respawn(await operator(svc), worker, directive, budget)
        again = spawned.session
        return f"{again.name} is {again.status.value} again (pid {spawned.pid}); its log: {spawned.log_path}"

    typer.echo(run(body))
