"""`maestro dashboard`: a live web page over the project's store, for the humans running the team."""

from __future__ import annotations

from typing import Annotated

import anyio
import typer

from maestro_mcp.cli.app import app, fail
from maestro_mcp.config import settings, store_location
from maestro_mcp.errors import MaestroError


@app.command()
def dashboard(
    host: Annotated[
        str, typer.Option(help="Address to listen on; any but loopback needs an operator token per request.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8765,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in a browser.")] = False,
) -> None:
    """Serve a live dashboard (sessions, plan, mail, approvals, steering) and /metrics until Ctrl-C.

    On loopback (the default) it is yours alone, without a token. Bound to any other address, every
    request needs an operator token: `maestro token create --operator`, then open /?token=TOKEN once.
    """
    from maestro_mcp.dashboard.serve import serve_dashboard

    if not 0 <= port <= 65535:
        raise fail(f"--port {port} is not a TCP port (0 picks a free one).", 2)
    try:
        location = store_location(create=False)
    except MaestroError as exc:
        raise fail(str(exc), 2) from None
    config = settings()
    try:
        code = anyio.run(lambda: serve_dashboard(location, host, port, open_browser=open_browser, config=config))
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)
