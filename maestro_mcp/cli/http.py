"""`maestro serve --http`: the command-line side of the HTTP server (see `maestro_mcp.server.http`).

`serve` (in cli/core.py) hands over here when given --http, so that agents on other
machines reach one server over streamable HTTP, each with its own bearer token.
"""

from __future__ import annotations

import logging
import sys

import anyio
import typer

from maestro_mcp.cli.app import fail
from maestro_mcp.config import settings, store_location
from maestro_mcp.errors import MaestroError


def serve_http_command(host: str, port: int, heartbeat_timeout: float | None, log_level: str) -> None:
    """Run the HTTP server until SIGINT/SIGTERM; exits with its status."""
    from maestro_mcp.server.http import serve_http

    logging.basicConfig(level=log_level.upper(), stream=sys.stderr, format="maestro serve --http: %(message)s")
    config = settings()
    heartbeat = config.http_heartbeat_s if heartbeat_timeout is None else heartbeat_timeout
    if heartbeat <= 0:
        raise fail(f"--heartbeat-timeout must be positive, not {heartbeat}.", 2)
    if not 0 <= port <= 65535:
        raise fail(f"--port {port} is not a TCP port (0 picks a free one).", 2)
    try:
        location = store_location(create=True)
    except MaestroError as exc:
        raise fail(str(exc), 2) from None
    code = anyio.run(
        lambda: serve_http(location, host, port, heartbeat, allowed_hosts=config.http_allowed_hosts, config=config),
    )
    raise typer.Exit(code)
