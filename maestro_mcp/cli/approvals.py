"""Answering workers' permission requests as the operator: approvals, approve, deny."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from maestro_mcp.cli.app import app
from maestro_mcp.cli.common import operator, print_table, run, services
from maestro_mcp.models import ApprovalRecord, ApprovalStatus, iso


def _row(record: ApprovalRecord, names: dict[str, str]) -> dict[str, str | None]:
    return {
        "request_id": record.id,
        "session_id": record.session_id,
        "name": names.get(record.session_id, record.session_id),
        "tool": record.tool,
        "input": record.input,
        "reason": record.reason,
        "status": record.status.value,
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at),
    }


@app.command()
def approvals(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Answered ones too, newest last.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Never cut a cell short (the default when piped).")] = False,
) -> None:
    """Workers' permission requests waiting for an answer (`maestro approve ID` / `maestro deny ID`)."""

    async def body() -> None:
        async with services() as svc:
            status = None if all_ else ApprovalStatus.pending
            found = await svc.store.list_approvals(status=status)
            names = {s.id: s.name for s in await svc.store.list_sessions()}
        rows = [_row(r, names) for r in found]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            typer.echo("no pending approval requests" if not all_ else "no approval requests")
            return
        keys = ("request_id", "name", "tool", "input", "reason", "status", "expires_at")
        cells = [[str(r[k] or "") for k in keys] for r in rows]
        print_table(["id", "worker", "tool", "input", "reason", "status", "expires"], cells, full=full)

    run(body)


@app.command()
def approve(
    request_id: Annotated[str, typer.Argument(help="The request id (maestro approvals).")],
    reason: Annotated[str, typer.Option(help="Why; the worker's model reads it.")] = "",
    remember: Annotated[
        bool, typer.Option("--remember", help="Allow the same kind of call without asking from now on.")
    ] = False,
) -> None:
    """Let a worker's waiting tool call run."""
    _decide(request_id, True, reason, remember)


@app.command()
def deny(
    request_id: Annotated[str, typer.Argument(help="The request id (maestro approvals).")],
    reason: Annotated[str, typer.Option(help="Why; the worker's model reads it.")],
    remember: Annotated[
        bool, typer.Option("--remember", help="Deny the same kind of call without asking from now on.")
    ] = False,
) -> None:
    """Refuse a worker's waiting tool call, with a reason its model reads."""
    _decide(request_id, False, reason, remember)


def _decide(request_id: str, allow: bool, reason: str, remember: bool) -> None:
    async def body() -> None:
        async with services() as svc:
            decided = await svc.approvals.decide(await operator(svc), request_id, allow, reason, remember)
        rule = f"; remembered rule {decided.rule!r}" if decided.rule else ""
        typer.echo(f"{decided.id} is {decided.status.value}{rule}")

    run(body)
