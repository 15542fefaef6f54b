"""A loopback HTTP proxy that adds `Authorization: Bearer <token>` to every request it forwards.

MCP's conformance suite connects to a bare URL and sends no credentials; `maestro serve --http`
answers 401 to any request without a session's token. Between the two, this proxy makes the
suite an authenticated client of the real server, streams (SSE) included, and changes nothing else.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import anyio
import httpx2
import uvicorn
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}


class _Proxy:
    def __init__(self, target: str, token: str, client: httpx2.AsyncClient) -> None:
        self.target = target.rstrip("/")
        self.token = token
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | {"authorization"}}
        headers["authorization"] = f"Bearer {self.token}"
        url = self.target + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        upstream = self.client.build_request(request.method, url, headers=headers, content=await request.body())
        response = await self.client.send(upstream, stream=True)
        kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in HOP_BY_HOP]
        out = StreamingResponse(
            response.aiter_raw(), status_code=response.status_code, background=BackgroundTask(response.aclose)
        )
        out.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in kept]
        await out(scope, receive, send)


class _Quiet(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


@contextlib.asynccontextmanager
async def bearer_proxy(target: str, token: str) -> AsyncIterator[str]:
    """The base URL (http://127.0.0.1:PORT) of a proxy to `target` (the server's base URL)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=None)) as client:
        config = uvicorn.Config(
            _Proxy(target, token, client),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,  # open SSE streams are cut after that: the exit stays bounded
        )
        server = _Quiet(config)
        async with anyio.create_task_group() as tg:
            # The socket listens already: connections made before uvicorn runs wait in its backlog.
            tg.start_soon(lambda: server.serve(sockets=[sock]))
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.should_exit = True
    sock.close()
