"""`maestro dashboard`: the dashboard on its own, over the project's store, until SIGINT/SIGTERM."""

from __future__ import annotations

import sys
import webbrowser

import anyio
import anyio.to_thread

from maestro_mcp.config import Settings, settings
from maestro_mcp.errors import MaestroError
from maestro_mcp.server.http import bind_socket, guarded_server, is_loopback, shown_url, stop_on_signal
from maestro_mcp.service import Services
from maestro_mcp.store import ALL, create_store

from .app import Dashboard

PLAIN_HTTP_WARNING = (
    "WARNING: listening on {host}, beyond this machine, over plain HTTP: operator tokens cross the network"
    " unencrypted. Put a TLS-terminating reverse proxy in front (docs/dashboard.md), or bind to 127.0.0.1."
)


async def serve_dashboard(
    location: str, host: str, port: int, *, open_browser: bool = False, config: Settings | None = None
) -> int:
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        print(f"maestro dashboard: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    config = config or settings()
    store = create_store(location, config)
    try:
        await store.open()
        svc = Services.create(store, config)
        dashboard = Dashboard(svc, loopback=is_loopback(host), allowed_hosts=config.http_allowed_hosts)
        server = guarded_server(dashboard.asgi, lifespan="off")
        async with anyio.create_task_group() as tg:
            await tg.start(stop_on_signal, server, dashboard.close)
            await store.listen(ALL, tg)
            tg.start_soon(dashboard.run)
            if not is_loopback(host):
                print(f"maestro dashboard: {PLAIN_HTTP_WARNING.format(host=host)}", file=sys.stderr, flush=True)
            url = shown_url(host, sock.getsockname()[1])
            print(f"maestro dashboard: serving {store.location} at {url}", file=sys.stderr, flush=True)
            if open_browser:
                await anyio.to_thread.run_sync(webbrowser.open, url)
            await server.serve(sockets=[sock])
            tg.cancel_scope.cancel()
        return 0
    except MaestroError as exc:
        print(f"maestro dashboard: {exc}", file=sys.stderr)
        return 2
    finally:
        sock.close()
        await store.close()
