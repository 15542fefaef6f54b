"""Shared state for humans: `maestro state get|set|ls|rm`, the same values agents read with state_get."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from maestro_mcp.cli.app import app
from maestro_mcp.cli.common import operator, print_table, run, services
from maestro_mcp.config import MAX_WAIT_S
from maestro_mcp.service.state import StateView

state_app = typer.Typer(help="Shared state: values agents set and read by key (state_set / state_get).")
app.add_typer(state_app, name="state")


def _doc(view: StateView) -> dict[str, object]:
    return {
        "key": view.key,
        "value": json.loads(view.value) if view.value is not None else None,
        "version": view.version,
        "set_by": view.set_by,
        "set_at": view.set_at,
        "expires_at": view.expires_at,
    }


@state_app.command("get")
def get(
    key: Annotated[str, typer.Argument(help="The key, e.g. task.api.result.")],
    wait: Annotated[
        float | None, typer.Option("--wait", min=0, max=MAX_WAIT_S, help="Wait up to S seconds for it to be set.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The whole entry as JSON.")] = False,
) -> None:
    """Print a value (JSON), or with --json the entry with its version and who set it when."""

    async def body() -> None:
        async with services() as svc:
            view = await svc.state.view(await svc.state.require(key, wait_s=wait))
        if as_json:
            typer.echo(json.dumps(_doc(view), indent=2))
        else:
            typer.echo(view.value)

    run(body)


@state_app.command("set")
def set_(
    key: Annotated[str, typer.Argument(help="The key: letters, digits and . _ : @ - .")],
    value: Annotated[str, typer.Argument(help='JSON text: "ready" (quoted), 8080, {"a": 1}.')],
    ttl: Annotated[float | None, typer.Option("--ttl", help="Expire after S seconds.")] = None,
    if_version: Annotated[
        int | None, typer.Option("--if-version", help="Only if the key is still at this version (0: unset).")
    ] = None,
) -> None:
    """Set a value as the operator; prints the new version."""

    async def body() -> None:
        async with services() as svc:
            me = await operator(svc)
            entry = await svc.state.set(me, key, value, ttl_s=ttl, if_version=if_version)
        typer.echo(f"{entry.key} = version {entry.version}")

    run(body)


@state_app.command("ls")
def ls(
    prefix: Annotated[str, typer.Argument(help="Only keys starting with this.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Never cut a cell short (the default when piped).")] = False,
) -> None:
    """Every live key with its version, who set it, when, and the start of its value."""

    async def body() -> None:
        async with services() as svc:
            views = [await svc.state.view(e) for e in await svc.state.listed(prefix)]
        if as_json:
            typer.echo(json.dumps([_doc(v) for v in views], indent=2))
            return
        if not views:
            typer.echo(f"no state keys starting with {prefix!r}" if prefix else "no state keys")
            return
        rows = [
            [v.key, str(v.version), v.set_by or "", v.set_at or "", v.expires_at or "", (v.value or "")[:80]]
            for v in views
        ]
        print_table(["key", "version", "set by", "set at", "expires", "value"], rows, full=full)

    run(body)


@state_app.command("rm")
def rm(key: Annotated[str, typer.Argument(help="The key to unset.")]) -> None:
    """Unset a key (a later value gets the next version, so stale compare-and-sets still lose)."""

    async def body() -> None:
        async with services() as svc:
            gone = await svc.state.unset(key)
        typer.echo(f"unset {key}" if gone else f"{key} was not set")

    run(body)
