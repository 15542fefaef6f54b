"""`maestro serve --http`: one server for agents on other machines, each identified by a bearer token.

Every HTTP request must carry ``Authorization: Bearer <token>`` naming a session
(`maestro token create` prints one; only its hash is stored). `BearerAuth`
checks it before the MCP transport sees the request: no token, or a wrong or
revoked one, gets 401 and touches nothing. An MCP session (``Mcp-Session-Id``)
stays bound to the maestro session that opened it.

There is no process per agent to watch, so liveness comes from activity: each
request, and each open response stream (a long `mail_wait`, the SSE stream a
client keeps open), keeps the session's `last_seen_at` fresh. `HttpLiveness`
marks a session `exited` (and tells its parent, like a stdio server's exit)
once it has been silent for the heartbeat timeout. A later request revives it;
a session that was stopped (`maestro stop`, `stop_worker`) gets 403 instead.
Nothing here starts processes: `spawn_worker` over HTTP says to use a stdio server.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import signal
import socket
import sys
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Generator
from typing import Any, Literal

import anyio
import anyio.abc
import uvicorn
from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maestro_mcp.config import Settings, settings
from maestro_mcp.dashboard import Dashboard
from maestro_mcp.errors import AuthError, MaestroError
from maestro_mcp.ids import hash_token
from maestro_mcp.models import Role, SessionRecord, SessionStatus, now
from maestro_mcp.service import Services
from maestro_mcp.store import ALL, create_store

from . import build_server
from .heartbeat import beat_forever
from .http_guard import IDLE_TIMEOUT_S, MAX_CONNECTIONS, GuardedH11Protocol
from .runtime import Runtime

log = logging.getLogger(__name__)

STATE_KEY = "maestro_session"
MCP_SESSION_HEADER = b"mcp-session-id"
MAX_BOUND_MCP_SESSIONS = 10_000
TOUCH_EVERY_S = 5.0
DEFAULT_PORT = 8765
MAX_REQUEST_BYTES = 4 * 1024 * 1024
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class HttpIdentity:
    """The caller of a tool over HTTP: the session `BearerAuth` attached to the request."""

    async def caller(self, ctx: Context[Any, Any]) -> SessionRecord:
        try:
            request = ctx.request_context.request
        except ValueError:
            request = None
        state = getattr(request, "scope", {}).get("state", {}) if request is not None else {}
        session = state.get(STATE_KEY)
        if not isinstance(session, SessionRecord):
            raise AuthError("This request carries no valid bearer token.", "Send Authorization: Bearer <token>.")
        return session

    def listed_role(self, request: Any) -> Role:
        """The role of the token's session (BearerAuth let no request without one through)."""
        session = getattr(request, "scope", {}).get("state", {}).get(STATE_KEY)
        return session.role if isinstance(session, SessionRecord) else Role.worker


class HttpLiveness:
    """Activity of the sessions this server has served, and the reaper of silent ones."""

    def __init__(self, services: Services, heartbeat_s: float) -> None:
        self.services = services
        self.heartbeat_s = heartbeat_s
        self.touch_every_s = min(TOUCH_EVERY_S, heartbeat_s / 3)
        self.in_flight: Counter[str] = Counter()
        self.watched: set[str] = set()
        self._touched: dict[str, float] = {}

    async def begin(self, session: SessionRecord) -> SessionRecord:
        """A request of `session` starts: revive it if it had ended, else record the activity."""
        store = self.services.store
        if not session.live or session.status is SessionStatus.spawning:
            session = await store.revive_session(session.id, SessionStatus.working, None)
            self._touched[session.id] = time.monotonic()
        else:
            await self._touch_if_due(session.id)
        self.watched.add(session.id)
        self.in_flight[session.id] += 1
        return session

    async def end(self, session_id: str) -> None:
        self.in_flight[session_id] -= 1
        if self.in_flight[session_id] <= 0:
            del self.in_flight[session_id]
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await self._touch_if_due(session_id)

    async def _touch_if_due(self, session_id: str) -> None:
        if time.monotonic() - self._touched.get(session_id, 0.0) >= self.touch_every_s:
            self._touched[session_id] = time.monotonic()
            await self.services.store.touch_session(session_id)

    async def sweep(self) -> list[str]:
        """Touch sessions with a request in flight; end those silent for longer than the heartbeat."""
        ended: list[str] = []
        for session_id in list(self.watched):
            if self.in_flight.get(session_id):
                await self._touch_if_due(session_id)
                continue
            record = await self.services.store.get_session(session_id)
            if record is None or not record.live or record.pid is not None:
                # Gone, or served by a process of its own (a stdio server), whose end is what ends it.
                self.watched.discard(session_id)
                continue
            # The store's last_seen_at decides: another HTTP server may be serving this session too.
            if now() - record.last_seen_at > self.heartbeat_s and not self.in_flight.get(session_id):
                self.watched.discard(session_id)
                done = await self.services.sessions.end(
                    record,
                    SessionStatus.exited,
                    None,
                    f"No request from it over HTTP for {self.heartbeat_s:.0f} s (heartbeat timeout).",
                )
                if done is not None:
                    ended.append(session_id)
                    log.info("session %s silent for %.0f s: marked exited", record.name, self.heartbeat_s)
        return ended

    async def run(self) -> None:
        while True:
            await anyio.sleep(max(min(self.touch_every_s, self.heartbeat_s / 4), 0.05))
            try:
                await self.sweep()
            except Exception as exc:  # a store hiccup must not take the server down: sweep again later
                log.warning("liveness sweep failed: %s", exc)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def bearer_token(scope: Scope) -> str | None:
    raw = _header(scope, b"authorization")
    if raw is None:
        return None
    scheme, _, token = raw.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def _refuse(send: Send, status: int, error: str, description: str) -> None:
    body = json.dumps({"error": error, "error_description": description}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", f'Bearer realm="maestro", error="{error}"'.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BearerAuth:
    """ASGI middleware: every HTTP request must name a session by its bearer token, or get 401."""

    def __init__(self, app: ASGIApp, services: Services, liveness: HttpLiveness) -> None:
        self.app = app
        self.services = services
        self.liveness = liveness
        self._mcp_owner: OrderedDict[str, str] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        token = bearer_token(scope)
        if token is None:
            await _refuse(send, 401, "invalid_request", "Send Authorization: Bearer <token> (maestro token create).")
            return
        try:
            session = await self.services.store.session_by_token_hash(hash_token(token))
        except MaestroError as exc:
            log.warning("token lookup failed: %s", exc)
            await _refuse(send, 503, "temporarily_unavailable", "The store is unreachable; try again shortly.")
            return
        if session is None:
            await _refuse(send, 401, "invalid_token", "This token is unknown or was revoked.")
            return
        if not session.live and session.status is not SessionStatus.exited:
            # Stopped by its coordinator or the operator (or failed): coming back is not its decision.
            await _refuse(
                send, 403, "session_ended", f"Session {session.name} is {session.status.value}; ask for a new one."
            )
            return
        mcp_session = _header(scope, MCP_SESSION_HEADER)
        if mcp_session is not None and self._mcp_owner.get(mcp_session, session.id) != session.id:
            await _refuse(send, 403, "insufficient_scope", "This MCP session belongs to another maestro session.")
            return
        try:
            session = await self.liveness.begin(session)
        except MaestroError as exc:
            log.warning("could not record activity of %s: %s", session.name, exc)
            await _refuse(send, 503, "temporarily_unavailable", "The store is unreachable; try again shortly.")
            return
        scope.setdefault("state", {})[STATE_KEY] = session

        async def send_and_bind(message: Message) -> None:
            if message["type"] == "http.response.start":
                for key, value in message.get("headers", ()):
                    if key.lower() == MCP_SESSION_HEADER:
                        self._bind(bytes(value).decode("latin-1"), session.id)
            await send(message)

        try:
            await self.app(scope, receive, send_and_bind)
        finally:
            await self.liveness.end(session.id)

    def _bind(self, mcp_session: str, session_id: str) -> None:
        self._mcp_owner[mcp_session] = session_id
        self._mcp_owner.move_to_end(mcp_session)
        while len(self._mcp_owner) > MAX_BOUND_MCP_SESSIONS:
            self._mcp_owner.popitem(last=False)


class McpBesideDashboard:
    """`/mcp` for agents (bearer tokens of sessions), everything else for the dashboard's people."""

    def __init__(self, mcp: ASGIApp, dashboard: ASGIApp) -> None:
        self.mcp = mcp
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "lifespan" or path == "/mcp" or path.startswith("/mcp/"):
            await self.mcp(scope, receive, send)  # the MCP app's lifespan runs its session manager
        else:
            await self.dashboard(scope, receive, send)


class QuietServer(uvicorn.Server):
    """uvicorn, minus its signal handling: `serve_http` (or `serve_dashboard`) stops it, then closes the store."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def guarded_server(app: ASGIApp, *, lifespan: Literal["on", "off"]) -> QuietServer:
    """uvicorn as both `maestro serve --http` and `maestro dashboard` run it: bounded requests, idle
    connections and connection count (http_guard.py), no access log, 5 s of graceful shutdown."""
    return QuietServer(
        uvicorn.Config(
            app,
            http=GuardedH11Protocol,
            lifespan=lifespan,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
            timeout_keep_alive=IDLE_TIMEOUT_S,
            limit_concurrency=MAX_CONNECTIONS,
        )
    )


def shown_url(host: str, port: int, path: str = "/") -> str:
    """Where to point a browser or client at a server listening on `host`."""
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    if host in ("0.0.0.0", "::", "[::]"):
        shown = "127.0.0.1"
    return f"http://{shown}:{port}{path}"


def _security(host: str, extra_hosts: list[str]) -> TransportSecuritySettings | None:
    """DNS-rebinding protection on loopback (as the SDK does), plus a reverse proxy's public names."""
    if not is_loopback(host):
        return None
    hosts = LOOPBACK_HOSTS + extra_hosts
    origins = [f"http://{h}" for h in LOOPBACK_HOSTS] + [f"https://{h}" for h in extra_hosts]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # The protocol named, not 0: asyncio turns Nagle off only on sockets whose proto is IPPROTO_TCP, and
    # with Nagle on, every response after the first on a keep-alive connection waited ~40 ms for the
    # client's delayed ACK (headers and body are two writes).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def serve_http(
    location: str,
    host: str,
    port: int,
    heartbeat_s: float,
    *,
    allowed_hosts: list[str] | None = None,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    config: Settings | None = None,
) -> int:
    """Serve MCP over streamable HTTP at /mcp until SIGINT/SIGTERM. Prints where it listens on stderr."""
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        print(f"maestro serve --http: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    config = config or settings()
    # One server for many agents: their transactions share a pool (see docs/deployment.md).
    store = create_store(location, config, pool_size=config.http_pg_pool_size)
    try:
        await store.open()
        services = Services.create(store, config)
        liveness = HttpLiveness(services, heartbeat_s)
        mcp = build_server(Runtime(services, HttpIdentity()))
        app = mcp.streamable_http_app(
            streamable_http_path="/mcp",
            host=host,
            transport_security=_security(host, allowed_hosts or []),
            max_request_body_size=max_request_bytes,
        )
        # The dashboard and /metrics beside /mcp, behind their own gate (operator tokens off loopback).
        dashboard = Dashboard(services, loopback=is_loopback(host), allowed_hosts=allowed_hosts or [])
        server = guarded_server(McpBesideDashboard(BearerAuth(app, services, liveness), dashboard.asgi), lifespan="on")
        async with anyio.create_task_group() as tg:
            await tg.start(stop_on_signal, server, dashboard.close)
            await store.listen(ALL, tg)
            tg.start_soon(liveness.run)
            tg.start_soon(dashboard.run)
            tg.start_soon(beat_forever, services, lambda: None)
            if not is_loopback(host):
                print(
                    f"maestro serve --http: WARNING: listening on {host}, beyond this machine, over plain HTTP:"
                    " bearer tokens and mail cross the network unencrypted. Put a TLS-terminating reverse proxy"
                    " in front (docs/deployment.md), or bind to 127.0.0.1.",
                    file=sys.stderr,
                    flush=True,
                )
            # The socket is listening already: connections made from now on wait in its backlog.
            bound_port = sock.getsockname()[1]
            print(
                f"maestro serve --http: serving MCP at {shown_url(host, bound_port, '/mcp')}",
                file=sys.stderr,
                flush=True,
            )
            print(
                f"maestro serve --http: the dashboard is at {shown_url(host, bound_port)} and metrics at /metrics",
                file=sys.stderr,
                flush=True,
            )
            await server.serve(sockets=[sock])
            tg.cancel_scope.cancel()
        return 0
    except MaestroError as exc:
        print(f"maestro serve --http: {exc}", file=sys.stderr)
        return 2
    finally:
        sock.close()
        await store.close()


async def stop_on_signal(
    server: uvicorn.Server,
    before: Callable[[], None] | None = None,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """On SIGTERM/SIGINT: call `before` (the dashboard ends its event streams, which would hold the
    graceful shutdown for its whole timeout), then let uvicorn stop."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:
            if before is not None:
                before()
            server.should_exit = True
            return
