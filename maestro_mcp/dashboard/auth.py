"""Who may look at the dashboard and act from it.

On a loopback bind the page is the local user's, like `maestro status`: no token, but the Host
header must name this machine (a page on another site that re-points its DNS name at 127.0.0.1
must not read the store: DNS rebinding). A request that a reverse proxy passed on (a public name
allowed by MAESTRO_HTTP_ALLOWED_HOSTS, or Forwarded / X-Forwarded-For / X-Real-IP headers) may come
from anywhere, so it is treated as remote. On any other bind, and for such requests, every request,
the event stream and /metrics included, must carry an operator's token (`maestro token create --operator`): as
``Authorization: Bearer`` (Prometheus, curl) or as the HttpOnly cookie that `/login` (or a first
visit to ``/?token=...``) sets for a browser, which cannot put headers on an EventSource.

Actions are POSTs carrying a CSRF token bound to who is signed in (an HMAC under a secret of this
process), and a POST whose Origin is another site's is refused before the token is even looked at.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from maestro_mcp.errors import MaestroError
from maestro_mcp.ids import hash_token
from maestro_mcp.models import Role, SessionRecord
from maestro_mcp.service import Services

log = logging.getLogger(__name__)

COOKIE = "maestro_operator"
STATE_KEY = "dashboard_viewer"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
PUBLIC_PATHS = ("/login", "/static/")
"""Reachable without a token: the sign-in form and its style sheet (nothing of the store)."""


@dataclass(frozen=True)
class Viewer:
    """Who makes a request: the local user on loopback (`session` None), else an operator's session."""

    session: SessionRecord | None
    csrf: str
    token: str | None = None
    """The token this request carried in its query: the gate turns it into a cookie."""


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def host_allowed(host: str | None, patterns: list[str]) -> bool:
    """Whether a Host header names this machine, or matches one of `patterns` ("name", "name:*", "name:port")."""
    if not host:
        return False
    name, port = split_host(host)
    for pattern in [*(f"{n}:*" for n in LOOPBACK_NAMES), *patterns]:
        p_name, p_port = split_host(pattern)
        if p_name.lower() == name.lower() and p_port in ("*", "", port):
            return True
    return False


def split_host(host: str) -> tuple[str, str]:
    """("name", "port") of "name:port", "[v6]:port", or a bare name (port "")."""
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1], host[end + 2 :]
    name, _, port = host.partition(":")
    return name, port


def forwarded(scope: Scope) -> bool:
    """Whether a reverse proxy passed this request on: then it may come from anywhere, loopback or not."""
    return any(header(scope, name) is not None for name in (b"forwarded", b"x-forwarded-for", b"x-real-ip"))


def bearer(scope: Scope) -> str | None:
    raw = header(scope, b"authorization")
    if raw is None:
        return None
    scheme, _, token = raw.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def cookie_token(scope: Scope) -> str | None:
    raw = header(scope, b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header from some other site's script: as good as none
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def query_token(scope: Scope) -> str | None:
    values = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1")).get("token")
    return values[0] if values and values[0] else None


class Gate:
    """ASGI middleware in front of the dashboard: Host check on loopback, operator token elsewhere."""

    def __init__(self, app: ASGIApp, services: Services, *, loopback: bool, allowed_hosts: list[str]) -> None:
        self.app = app
        self.services = services
        self.loopback = loopback
        self.allowed_hosts = allowed_hosts
        self._secret = secrets.token_bytes(32)

    def csrf_for(self, identity: str) -> str:
        return hmac.new(self._secret, identity.encode(), hashlib.sha256).hexdigest()[:40]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.loopback and not host_allowed(header(scope, b"host"), self.allowed_hosts):
            await refuse(
                send,
                421,
                "misdirected_request",
                "This dashboard serves this machine only: open it as http://127.0.0.1:PORT/ (or add the name"
                " to MAESTRO_HTTP_ALLOWED_HOSTS).",
            )
            return
        if scope["method"] == "POST" and not self._same_origin(scope):
            await refuse(send, 403, "cross_origin", "A form from another site cannot act on this dashboard.")
            return
        path: str = scope["path"]
        if self.loopback and host_allowed(header(scope, b"host"), []) and not forwarded(scope):
            scope.setdefault("state", {})[STATE_KEY] = Viewer(None, self.csrf_for("loopback"))
            await self.app(scope, receive, send)
            return
        if path.startswith(PUBLIC_PATHS):
            await self.app(scope, receive, send)
            return
        from_query = query_token(scope) if scope["method"] == "GET" else None
        token = bearer(scope) or from_query or cookie_token(scope)
        if token is None:
            await refuse(
                send, 401, "invalid_request", "Sign in with an operator token (maestro token create --operator).", scope
            )
            return
        try:
            session = await self.services.store.session_by_token_hash(hash_token(token))
        except MaestroError as exc:
            log.warning("token lookup failed: %s", exc)
            await refuse(send, 503, "temporarily_unavailable", "The store is unreachable; try again shortly.")
            return
        if session is None:
            await refuse(send, 401, "invalid_token", "This token is unknown or was revoked.", scope)
            return
        if session.role is not Role.operator:
            await refuse(
                send,
                403,
                "insufficient_scope",
                f"This token is {session.name}'s, a {session.role.value}: the dashboard needs an operator's"
                " (maestro token create --operator).",
            )
            return
        viewer = Viewer(session, self.csrf_for(hash_token(token)), token if from_query else None)
        scope.setdefault("state", {})[STATE_KEY] = viewer
        await self.app(scope, receive, send)

    def _same_origin(self, scope: Scope) -> bool:
        origin = header(scope, b"origin")
        if origin is None:
            return True  # no Origin (curl, an old client): the CSRF token still decides
        # "null" (a sandboxed frame, a privacy-minded redirect) has no host, so it never matches. Behind a
        # proxy the public name may arrive as X-Forwarded-Host while Host names the upstream.
        names = {(header(scope, name) or "").lower() for name in (b"host", b"x-forwarded-host")} - {""}
        return urlsplit(origin).netloc.lower() in names

    def csrf_ok(self, viewer: Viewer, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(viewer.csrf, presented)


def cookie_header(token: str, secure: bool) -> tuple[bytes, bytes]:
    value = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
    return b"set-cookie", value.encode("latin-1")


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>maestro dashboard: sign in</title><link rel="stylesheet" href="/static/dashboard.css"></head>
<body><main class="login"><h1>maestro dashboard</h1><p role="alert">{message}</p>
<form method="post" action="/login"><label for="token">Operator token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<p class="hint">Print one with <code>maestro token create --operator</code>.</p>
<button type="submit">Sign in</button></form></main></body></html>
"""


async def refuse(send: Send, status: int, error: str, description: str, scope: Scope | None = None) -> None:
    """A refusal: JSON for programs, the sign-in page for a browser asking for a page."""
    accept = (header(scope, b"accept") or "") if scope is not None else ""
    if status == 401 and "text/html" in accept:
        from html import escape

        body = LOGIN_PAGE.format(message=escape(description)).encode()
        content_type = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"error": error, "error_description": description}).encode()
        content_type = b"application/json"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", f'Bearer realm="maestro", error="{error}"'.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
