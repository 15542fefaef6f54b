"""The dashboard's web application: pages, the event stream, the operator's actions, /metrics.

Everything is server-rendered; /static/dashboard.js (hand-written, shipped in the wheel) opens
the event stream, swaps the sections it receives and sends the forms with fetch. Every response
carries a Content-Security-Policy that allows no inline script and nothing from another origin,
so even a mistake in escaping could not run an agent's script.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from html import escape

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maestro_mcp.config import is_url
from maestro_mcp.errors import Conflict, Forbidden, InvalidArgument, MaestroError, NotFound
from maestro_mcp.ids import hash_token
from maestro_mcp.models import Role, SessionRecord
from maestro_mcp.service import Services
from maestro_mcp.service.sessions import operator_session

from . import metrics
from .auth import LOGIN_PAGE, STATE_KEY, Gate, Viewer, cookie_header
from .board import board, worker_page
from .feed import BOARD, WORKER, Broadcaster, parse_versions
from .render import board_sections, not_found, page, worker_sections

MAX_FORM_BYTES = 64 * 1024
REFRESH_S = 30.0
PG_REFRESH_S = 2.0
PING_S = 15
SESSION_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
        b" form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _viewer(request: Request) -> Viewer:
    viewer = request.scope.get("state", {}).get(STATE_KEY)
    assert isinstance(viewer, Viewer), "the Gate sets the viewer of every request it lets through"
    return viewer


def _status_of(exc: MaestroError) -> int:
    for kind, code in ((NotFound, 404), (Forbidden, 403), (Conflict, 409), (InvalidArgument, 400)):
        if isinstance(exc, kind):
            return code
    return 503


class Dashboard:
    """One dashboard over one store's services: `asgi` to serve, `run` to keep its pages live."""

    def __init__(self, svc: Services, *, loopback: bool, allowed_hosts: list[str] | None = None) -> None:
        self.svc = svc
        # PostgreSQL does not NOTIFY receipt and activity changes (they would wake every backend of the
        # database for a display's sake: store/postgres/transport.py), so there the pages are re-read
        # every couple of seconds as well; new mail, tasks, sessions and approvals still arrive at once.
        refresh = PG_REFRESH_S if is_url(svc.store.location) else REFRESH_S
        self.broadcaster = Broadcaster(svc, refresh_s=refresh)
        self.closing = anyio.Event()
        metrics.install()
        routes = [
            Route("/", self.index),
            Route("/workers/{session_id}", self.worker),
            Route("/events", self.events),
            Route("/approvals/{request_id}", self.decide, methods=["POST"]),
            Route("/steer", self.steer, methods=["POST"]),
            Route("/steer/clear", self.clear, methods=["POST"]),
            Route("/metrics", self.metrics),
            Route("/login", self.login, methods=["GET", "POST"]),
            Mount("/static", StaticFiles(packages=[("maestro_mcp.dashboard", "static")]), name="static"),
        ]
        self.app = Starlette(routes=routes, exception_handlers={MaestroError: _store_trouble})
        self.gate = Gate(self.app, svc, loopback=loopback, allowed_hosts=allowed_hosts or [])
        self.asgi: ASGIApp = SecurityHeaders(self.gate)

    async def run(self) -> None:
        await self.broadcaster.run()

    def close(self) -> None:
        """End the open event streams (the server is stopping: it need not wait for them)."""
        self.closing.set()

    # -- pages -----------------------------------------------------------------------------------------
    def _with_cookie(self, request: Request, viewer: Viewer) -> Response | None:
        """A first visit with ?token=: keep it in a cookie, and show the address without it."""
        if viewer.token is None:
            return None
        response = RedirectResponse(request.url.path, status_code=303)
        key, value = cookie_header(viewer.token, request.url.scheme == "https")
        response.raw_headers.append((key, value))
        return response

    async def index(self, request: Request) -> Response:
        viewer = _viewer(request)
        if (redirect := self._with_cookie(request, viewer)) is not None:
            return redirect
        sections = board_sections(await board(self.svc))
        return HTMLResponse(page("index.html", sections, csrf=viewer.csrf, feed=BOARD), headers=_no_store())

    async def worker(self, request: Request) -> Response:
        viewer = _viewer(request)
        if (redirect := self._with_cookie(request, viewer)) is not None:
            return redirect
        session_id = request.path_params["session_id"]
        found = await worker_page(self.svc, session_id) if SESSION_ID.match(session_id) else None
        if found is None:
            return HTMLResponse(not_found(f"No session {session_id!r}."), status_code=404)
        sections = worker_sections(found)
        html = page("worker.html", sections, csrf=viewer.csrf, feed=WORKER + found.record.id, name=found.record.name)
        return HTMLResponse(html, headers=_no_store())

    async def events(self, request: Request) -> Response:
        _viewer(request)
        feed = request.query_params.get("feed", BOARD)
        if feed != BOARD and not (feed.startswith(WORKER) and SESSION_ID.match(feed.removeprefix(WORKER))):
            return JSONResponse({"error": f"unknown feed {feed!r}: use 'board' or 'worker:<session id>'"}, 400)
        have = parse_versions(request.query_params.get("v", ""))

        async def stream() -> AsyncIterator[ServerSentEvent]:
            async with self.broadcaster.join(feed, have) as client:
                while True:
                    for section in await client.next(PING_S):
                        data = json.dumps({"id": section.id, "v": section.version, "html": section.html})
                        yield ServerSentEvent(data=data, event="section")

        return EventSourceResponse(
            stream(), ping=PING_S, headers={"cache-control": "no-store"}, shutdown_event=self.closing
        )

    async def metrics(self, request: Request) -> Response:
        _viewer(request)
        body, content_type = await metrics.exposition(self.svc, request.headers.get("accept"))
        return Response(body, media_type=content_type, headers=_no_store())

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            if self.gate.loopback:
                return RedirectResponse("/", status_code=303)
            return HTMLResponse(_login_page("Sign in with an operator token."), headers=_no_store())
        form = await _form(request)
        if isinstance(form, Response):
            return form
        token = form.get("token", "").strip()
        session = await self.svc.store.session_by_token_hash(hash_token(token)) if token else None
        if session is None or session.role is not Role.operator:
            why = "That is not an operator's token." if session is not None else "That token is unknown or was revoked."
            return HTMLResponse(_login_page(why), status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.raw_headers.append(cookie_header(token, request.url.scheme == "https"))
        return response

    # -- actions ---------------------------------------------------------------------------------------
    async def _act(self, request: Request) -> tuple[Viewer, dict[str, str], SessionRecord] | Response:
        viewer = _viewer(request)
        form = await _form(request)
        if isinstance(form, Response):
            return form
        if not self.gate.csrf_ok(viewer, form.get("csrf") or request.headers.get("x-csrf-token")):
            return _answer(request, False, "This form is stale or was not sent by the dashboard: reload the page.", 403)
        actor = viewer.session or await operator_session(self.svc.store)
        return viewer, form, actor

    async def decide(self, request: Request) -> Response:
        acted = await self._act(request)
        if isinstance(acted, Response):
            return acted
        _, form, actor = acted
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            return _answer(request, False, "Choose Approve or Deny.", 400)
        request_id = request.path_params["request_id"]
        try:
            decided = await self.svc.approvals.decide(actor, request_id, decision == "allow", form.get("reason", ""))
        except MaestroError as exc:
            return _answer(request, False, str(exc), _status_of(exc))
        return _answer(request, True, f"{decided.id} is {decided.status.value}.")

    async def steer(self, request: Request) -> Response:
        acted = await self._act(request)
        if isinstance(acted, Response):
            return acted
        _, form, actor = acted
        try:
            steered = await self.svc.steering.steer(
                actor, form.get("text", ""), form.get("to") or None, bool(form.get("priority"))
            )
        except MaestroError as exc:
            return _answer(request, False, str(exc), _status_of(exc))
        who = ", ".join(steered.recipients) or "nobody live yet (kept for sessions to come)"
        return _answer(request, True, f"Directive {steered.directive_id} sent to {who}.")

    async def clear(self, request: Request) -> Response:
        acted = await self._act(request)
        if isinstance(acted, Response):
            return acted
        _, form, _ = acted
        try:
            cleared = await self.svc.steering.clear(form.get("directive_id") or None)
        except MaestroError as exc:
            return _answer(request, False, str(exc), _status_of(exc))
        return _answer(request, True, f"Cleared {cleared} directive{'s' if cleared != 1 else ''}.")


async def _form(request: Request) -> dict[str, str] | Response:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        return _answer(request, False, f"The form is larger than {MAX_FORM_BYTES // 1024} KiB.", 413)
    form = await request.form(max_files=0, max_fields=20)
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _answer(request: Request, ok: bool, message: str, status: int = 200) -> Response:
    """JSON for the page's script; for a browser without script, back to the page (or an error page)."""
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"ok": ok, "message": message}, status_code=status)
    if ok:
        return RedirectResponse("/", status_code=303)  # (no Referer to go back to: the policy sends none)
    body = f"<!doctype html><title>maestro</title><p role='alert'>{escape(message)}</p><p><a href='/'>Back</a></p>"
    return HTMLResponse(body, status_code=status)


async def _store_trouble(request: Request, exc: Exception) -> Response:
    """A page could not be read (the store is unreachable, say): one clear line, not a traceback."""
    status = _status_of(exc) if isinstance(exc, MaestroError) else 500
    return _answer(request, False, f"The dashboard could not read the store: {exc}", status)


def _login_page(message: str) -> str:
    return LOGIN_PAGE.format(message=escape(message))


def _no_store() -> dict[str, str]:
    return {"cache-control": "no-store"}
