"""Core commands: serve, init, schemas, demo."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import anyio
import typer

from maestro_mcp.cli.app import app, fail
from maestro_mcp.config import Identity, settings, store_location
from maestro_mcp.errors import MaestroError
from maestro_mcp.models import Role


@app.command()
def serve(
    name: Annotated[
        str | None,
        typer.Option(help="Session name (unique per project); an ended session of that name is taken back."),
    ] = None,
    role: Annotated[Role, typer.Option(help="Role of a newly registered session.")] = Role.coordinator,
    parent: Annotated[
        str | None, typer.Option(help="Parent session (name or id) of a worker, looked up at its first tool call.")
    ] = None,
    agent: Annotated[str | None, typer.Option(help="Agent kind; default: guessed from the MCP client.")] = None,
    log_level: Annotated[str, typer.Option(help="Log level for stderr.")] = "WARNING",
    http: Annotated[
        bool, typer.Option("--http", help="Serve agents on other machines over streamable HTTP at /mcp instead.")
    ] = False,
    host: Annotated[str, typer.Option(help="--http: address to listen on (loopback unless told).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="--http: TCP port (0 picks a free one).")] = 8765,
    heartbeat_timeout: Annotated[
        float | None,
        typer.Option(help="--http: seconds of silence before a session counts as exited [MAESTRO_HTTP_HEARTBEAT_S]."),
    ] = None,
) -> None:
    """Serve the maestro tools over stdio to one agent (this is what agent CLIs start).

    With MAESTRO_SESSION and MAESTRO_TOKEN set it acts as that session; otherwise it
    registers a new session on the first tool call. MAESTRO_DB names the store.

    With --http it serves any number of agents over HTTP instead, each identified by
    the bearer token `maestro token create` printed for it.
    """
    if http:
        from maestro_mcp.cli.http import serve_http_command

        if any(v is not None for v in (name, parent, agent)):
            raise fail("--name, --parent and --agent are for stdio; with --http use `maestro token create`.", 2)
        serve_http_command(host, port, heartbeat_timeout, log_level)
    from maestro_mcp.server.runtime import Registration
    from maestro_mcp.server.stdio import serve_stdio

    logging.basicConfig(level=log_level.upper(), stream=sys.stderr, format="maestro serve: %(message)s")
    try:
        location = store_location(create=True)
    except MaestroError as exc:
        raise fail(str(exc), 2) from None
    registration = Registration(name=name, role=role, parent=parent, agent=agent)
    code = anyio.run(serve_stdio, location, registration, Identity.of(settings()))
    raise typer.Exit(code)


@app.command()
def schemas(
    out: Annotated[Path, typer.Option(help="Directory for the JSON files.")] = Path("tool_schemas"),
    check: Annotated[bool, typer.Option(help="Only check that the files are current.")] = False,
) -> None:
    """Write the JSON schema of every tool to tool_schemas/ (or check them with --check)."""
    from maestro_mcp import schemas as gen

    if check:
        stale = gen.stale_files(out)
        if stale:
            raise fail(f"tool schemas are stale: {', '.join(stale)}. Run `maestro schemas`.")
        typer.echo(f"tool schemas in {out} are current")
        return
    written = gen.write(out)
    typer.echo(f"wrote {len(written)} tool schemas to {out}")


@app.command()
def docs(
    out: Annotated[Path, typer.Option(help="Directory for the generated pages.")] = Path("docs"),
    check: Annotated[bool, typer.Option(help="Only check that the pages are current.")] = False,
) -> None:
    """Write the generated reference pages docs/tools.md and docs/cli.md (or check them with --check)."""
    from maestro_mcp import docgen

    if check:
        stale = docgen.stale(out)
        if stale:
            raise fail(f"generated docs are stale: {', '.join(stale)}. Run `maestro docs`.")
        typer.echo(f"generated docs in {out} are current")
        return
    for path in docgen.write(out):
        typer.echo(f"wrote {path}")


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="Keep the scratch project afterwards.")] = True,
) -> None:
    """Watch a scripted team (a coordinator and 3 workers) finish an 8-task plan, offline, in under a minute."""
    from maestro_mcp.demo import run_demo

    try:
        code = anyio.run(run_demo, keep)
    except MaestroError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("demo interrupted; its workers are stopped and its project is kept (see above).", 130) from None
    raise typer.Exit(code)
