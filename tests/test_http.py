"""`maestro serve --http` as a real process, reached by real MCP clients over streamable HTTP.

Sessions for remote agents come from `maestro token create` (also a real process). Every
request is authenticated by its bearer token; stdio servers share the same store.
Every wait is bounded with `anyio.fail_after`; nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from projectkit import serving, user_env

from maestro_mcp.client import AgentClient, ToolCallError, serve_params

if TYPE_CHECKING:
    from harness import StoreView

pytestmark = pytest.mark.anyio

START_S = 30
CALL_S = 15
JSON_ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}


def project_dir(db: str, cwd: Path | None) -> Path:
    """Where a command runs: the project of a SQLite store, or `cwd` (for a PostgreSQL URL)."""
    if cwd is not None:
        return cwd
    project = Path(db).parents[1]
    project.mkdir(parents=True, exist_ok=True)
    return project


async def maestro(db: str, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run a `maestro` command; its exit code, stdout and stderr."""
    with anyio.fail_after(START_S):
        done = await anyio.run_process(
            [sys.executable, "-m", "maestro_mcp", *args], env=user_env(db), check=False, cwd=project_dir(db, cwd)
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def create_token(db: str, name: str, *extra: str, cwd: Path | None = None) -> str:
    code, out, err = await maestro(db, "token", "create", "--name", name, *extra, cwd=cwd)
    assert code == 0, err
    return out.strip()


@dataclass
class HttpServer:
    url: str
    process: anyio.abc.Process
    stderr: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.url.removesuffix("/mcp")


@contextlib.asynccontextmanager
async def http_server(
    db: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> AsyncIterator[HttpServer]:
    """`maestro serve --http --port 0 ARGS`, until the block ends (then SIGTERM, and it must exit cleanly)."""
    command = [sys.executable, "-m", "maestro_mcp", "serve", "--http", "--port", "0", *args]

    def url_in(line: str) -> str | None:
        return line.rsplit(" ", 1)[-1] if "serving MCP at " in line else None

    async with serving(
        command, env={**user_env(db), **(env or {})}, cwd=project_dir(db, cwd), what="the HTTP server", url_in=url_in
    ) as (url, process, lines):
        yield HttpServer(url, process, lines)


@dataclass
class Remote:
    """An agent on another machine: an MCP client of the HTTP server."""

    client: Client

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments)
        if result.is_error:
            raise ToolCallError(tool, " ".join(getattr(block, "text", "") for block in result.content))
        return dict(result.structured_content or {})


@contextlib.asynccontextmanager
async def remote_agent(url: str, token: str | None, **client: Any) -> AsyncIterator[Remote]:
    """An MCP client over streamable HTTP that sends `token` as its bearer token."""
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(CALL_S, read=120)) as http,
        Client(streamable_http_client(url, http_client=http), read_timeout_seconds=CALL_S * 4, **client) as mcp,
    ):
        yield Remote(mcp)


def bearer(token: str) -> dict[str, str]:
    return {**JSON_ACCEPT, "authorization": f"Bearer {token}"}


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "project" / ".maestro" / "maestro.db")


@pytest.fixture
async def server(db: str) -> AsyncIterator[HttpServer]:
    async with http_server(db) as s:
        yield s


async def test_requests_without_a_valid_token_get_401_and_change_nothing(
    db: str, server: HttpServer, store_view: type[StoreView]
) -> None:
    await create_token(db, "remote")
    view = store_view(db)
    before, seen_before = view.snapshot(), view.session("remote")

    async with httpx2.AsyncClient(timeout=CALL_S) as http:
        for headers in (
            {},
            {"authorization": "Bearer not-a-token"},
            {"authorization": "Basic cmVtb3RlOnB3"},
            {"authorization": "Bearer"},
        ):
            response = await http.post(server.url, json=INITIALIZE, headers={**JSON_ACCEPT, **headers})
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "error" in response.json()

    assert view.snapshot() == before
    assert view.session("remote") == seen_before  # not even last_seen_at moved


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


async def refused(what: Awaitable[Any]) -> list[BaseException]:
    """Await `what`, which must fail with the SDK's error for a refused HTTP request (not a timeout)."""
    try:
        with anyio.fail_after(CALL_S):
            await what
    except TimeoutError:
        raise AssertionError("no answer: the request was neither served nor refused") from None
    except BaseException as exc:
        found = leaves(exc)
        assert any(isinstance(e, MCPError) for e in found), found
        return found
    raise AssertionError("the request was served")


async def test_an_mcp_client_without_a_token_cannot_connect(server: HttpServer) -> None:
    async def connect() -> None:
        async with remote_agent(server.url, None):
            pass

    await refused(connect())


async def test_a_token_works_until_it_is_revoked(db: str, server: HttpServer) -> None:
    token = await create_token(db, "remote", "--role", "worker")

    async with remote_agent(server.url, token, mode="legacy") as remote:
        with anyio.fail_after(CALL_S):
            me = await remote.call("whoami")
        assert (me["name"], me["role"]) == ("remote", "worker")

        code, _, err = await maestro(db, "token", "revoke", "remote")
        assert code == 0, err

        await refused(remote.call("whoami"))

    async with httpx2.AsyncClient(timeout=CALL_S) as http:
        response = await http.post(server.url, json=INITIALIZE, headers=bearer(token))
    assert response.status_code == 401


async def test_a_rotated_token_replaces_the_old_one(db: str, server: HttpServer) -> None:
    old = await create_token(db, "remote")
    code, out, err = await maestro(db, "token", "rotate", "remote")
    assert code == 0, err
    new = out.strip()

    async with httpx2.AsyncClient(timeout=CALL_S) as http:
        refused = await http.post(
            server.url, json=INITIALIZE, headers={**JSON_ACCEPT, "authorization": f"Bearer {old}"}
        )
        accepted = await http.post(
            server.url, json=INITIALIZE, headers={**JSON_ACCEPT, "authorization": f"Bearer {new}"}
        )
    assert refused.status_code == 401
    assert accepted.status_code == 200


async def test_an_mcp_session_cannot_be_used_with_another_sessions_token(db: str, server: HttpServer) -> None:
    alice, bob = await create_token(db, "alice"), await create_token(db, "bob")

    async with httpx2.AsyncClient(timeout=CALL_S) as http:
        opened = await http.post(
            server.url, json=INITIALIZE, headers={**JSON_ACCEPT, "authorization": f"Bearer {alice}"}
        )
        assert opened.status_code == 200
        mcp_session = opened.headers["mcp-session-id"]
        hijack = await http.post(
            server.url,
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            headers={**bearer(bob), "mcp-session-id": mcp_session, "mcp-protocol-version": "2025-06-18"},
        )
    assert hijack.status_code == 403


async def test_mail_round_trip_between_an_http_session_and_a_stdio_session(db: str, server: HttpServer) -> None:
    async with AgentClient(serve_params(db=db, name="local"), read_timeout_s=START_S) as local:
        with anyio.fail_after(START_S):
            await local.call("whoami")  # registers `local`, the coordinator the remote worker reports to
        token = await create_token(db, "remote", "--role", "worker", "--parent", "local")

        async with remote_agent(server.url, token) as remote:
            with anyio.fail_after(CALL_S):
                me = await remote.call("whoami")
            assert me["coordinator"] == "local"
            got: dict[str, Any] = {}

            async def remote_waits() -> None:
                got.update(await remote.call("mail_wait", timeout_s=60))

            with anyio.fail_after(CALL_S * 4):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(remote_waits)
                    sent = await local.call("mail_send", to="remote", body="please review", priority="high")
            assert not got["timed_out"]
            [message] = got["messages"]
            assert (message["sender"], message["body"], message["message_id"]) == (
                "local",
                "please review",
                sent["message_id"],
            )

            with anyio.fail_after(CALL_S):
                await remote.call("mail_ack", message_ids=[message["message_id"]])
                reply = await remote.call(
                    "mail_send", to="coordinator", body="looks good", reply_to=message["message_id"]
                )
                answered = await local.call("mail_wait", timeout_s=30)
                thread = await local.call("mail_thread", thread_id=sent["thread_id"])

            assert [m["body"] for m in answered["messages"]] == ["looks good"]
            assert answered["messages"][0]["message_id"] == reply["message_id"]
            assert [r["status"] for r in thread["messages"][0]["receipts"]] == ["acked"]


async def test_a_silent_http_session_is_marked_exited_and_its_parent_told(db: str) -> None:
    async with (
        http_server(db, "--heartbeat-timeout", "1") as server,
        AgentClient(serve_params(db=db, name="boss"), read_timeout_s=START_S) as boss,
    ):
        with anyio.fail_after(START_S):
            await boss.call("whoami")
        token = await create_token(db, "remote", "--role", "worker", "--parent", "boss")
        async with remote_agent(server.url, token, mode="legacy") as remote:
            with anyio.fail_after(CALL_S):
                await remote.call("whoami")

        # No process watches an HTTP agent: its silence is what ends it.
        with anyio.fail_after(CALL_S * 2):
            waited = await boss.call("mail_wait", timeout_s=CALL_S * 2)
        [event] = waited["messages"]
        assert event["type"] == "event" and "remote" in event["subject"] and "exited" in event["subject"]

        # Calling again revives it.
        async with remote_agent(server.url, token) as remote:
            with anyio.fail_after(CALL_S):
                await remote.call("whoami")
                sessions = await boss.call("list_sessions")
        assert {s["name"]: s["live"] for s in sessions["sessions"]}["remote"] is True


async def test_oversized_and_malformed_requests_are_refused_and_others_carry_on(db: str, server: HttpServer) -> None:
    bad, good = await create_token(db, "careless"), await create_token(db, "careful")

    async with remote_agent(server.url, good) as careful:
        with anyio.fail_after(CALL_S):
            await careful.call("whoami")
        async with httpx2.AsyncClient(timeout=CALL_S) as http:
            auth = bearer(bad)
            huge = await http.post(server.url, content=b"{" + b" " * (5 * 1024 * 1024) + b"}", headers=auth)
            garbage = await http.post(server.url, content=b"{not json", headers=auth)
            wrong_shape = await http.post(server.url, content=json.dumps([1, 2, 3]).encode(), headers=auth)
        assert huge.status_code == 413
        assert garbage.status_code == 400
        assert 400 <= wrong_shape.status_code < 500

        with anyio.fail_after(CALL_S):
            stream = await anyio.connect_tcp("127.0.0.1", int(server.base.rsplit(":", 1)[1]))
            async with stream:
                await stream.send(b"\x16\x03\x01 definitely not HTTP\r\n\r\n")
                answer = b""
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                    while b"\r\n" not in answer:
                        answer += await stream.receive()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400")

        with anyio.fail_after(CALL_S):
            sent = await careful.call("mail_send", to="careful", body="still here")
            inbox = await careful.call("mail_inbox")
        assert [m["message_id"] for m in inbox["messages"]] == [sent["message_id"]]


async def test_binding_beyond_loopback_warns_that_there_is_no_tls(db: str) -> None:
    async with http_server(db, "--host", "0.0.0.0") as server:
        assert any("WARNING" in line and "TLS" in line for line in server.stderr)


async def test_a_stopped_http_session_is_refused_rather_than_revived(db: str, server: HttpServer) -> None:
    token = await create_token(db, "remote")
    async with remote_agent(server.url, token) as remote:
        with anyio.fail_after(CALL_S):
            await remote.call("whoami")

    code, _, err = await maestro(db, "stop", "remote", "--grace", "0")
    assert code == 0, err

    async with httpx2.AsyncClient(timeout=CALL_S) as http:
        response = await http.post(server.url, json=INITIALIZE, headers=bearer(token))
    assert response.status_code == 403
    assert "stopped" in response.json()["error_description"]


async def test_half_open_connections_are_closed_when_their_request_head_does_not_arrive_in_time(db: str) -> None:
    """300 connections that never finished their request head once stayed open for 30 s; a trickle of one
    byte at a time no longer keeps a connection either. Requests sent properly are answered meanwhile."""
    async with http_server(db, env={"MAESTRO_HTTP_HEAD_TIMEOUT_S": "1"}) as server:
        host, port = server.base.removeprefix("http://").rsplit(":", 1)
        streams = []
        for _ in range(100):
            stream = await anyio.connect_tcp(host, int(port))
            await stream.send(b"POST /mcp HTTP/1.1\r\nHost: " + host.encode() + b"\r\n")
            streams.append(stream)
        trickler = await anyio.connect_tcp(host, int(port))
        closed = 0

        async def trickle() -> None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                for byte in b"X-Slow: " + b"a" * 200:
                    await trickler.send(bytes([byte]))
                    await anyio.sleep(0.1)  # the attack itself: a slow sender, not a wait for a result

        async def closes(stream: anyio.abc.SocketStream) -> None:
            nonlocal closed
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                while await stream.receive():
                    pass
            closed += 1

        with anyio.fail_after(8):
            async with anyio.create_task_group() as tg:
                tg.start_soon(trickle)
                for stream in [*streams, trickler]:
                    tg.start_soon(closes, stream)
                async with httpx2.AsyncClient(timeout=CALL_S) as http:
                    answered = await http.post(server.url, json=INITIALIZE, headers=JSON_ACCEPT)
        assert closed == 101, "every half-open connection was closed by the server"
        assert answered.status_code == 401, "a proper request was answered meanwhile"


async def test_spawn_and_stop_over_http_say_what_is_refused_and_why(db: str, server: HttpServer) -> None:
    # A coordinator: a worker would be refused for its role before the transport is considered.
    token = await create_token(db, "remote-lead", "--role", "coordinator")
    async with remote_agent(server.url, token) as remote:
        with pytest.raises(ToolCallError) as spawn, anyio.fail_after(CALL_S):
            await remote.call("spawn_worker", agent="script", directive="x")
        with pytest.raises(ToolCallError) as stop, anyio.fail_after(CALL_S):
            await remote.call("stop_worker", session_id="anyone")
    assert "refused over `maestro serve --http`" in spawn.value.text and "start a program" in spawn.value.text
    assert "refused over `maestro serve --http`" in stop.value.text and "maestro stop" in stop.value.text
