"""Identities that survive a restart: `maestro serve --name X` takes X back once X has ended (the same
session, its mailbox, the mail that waited), is refused only while X is live, and a worker's `--parent`
is resolved when it registers. Real `maestro serve` processes over stdio."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from mcp import Client
from projectkit import user_env
from surfacekit import COORDINATOR_TOOLS, WORKER_TOOLS, wire

from maestro_mcp.cli.common import services_at
from maestro_mcp.client import AgentClient, ToolCallError, serve_params
from maestro_mcp.models import Role

if TYPE_CHECKING:
    from harness import StoreView

pytestmark = pytest.mark.anyio

START_S = 30
CALL_S = 15


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "project" / ".maestro" / "maestro.db")


@pytest.fixture
def view(db: str, store_view: type[StoreView]) -> StoreView:
    return store_view(db)


@contextlib.asynccontextmanager
async def agent(db: str, **params: Any) -> AsyncIterator[AgentClient]:
    async with AgentClient(serve_params(db=db, **params), read_timeout_s=START_S) as client:
        yield client


async def call(client: AgentClient, tool: str, **arguments: Any) -> dict[str, Any]:
    with anyio.fail_after(CALL_S):
        return await client.call(tool, **arguments)


async def serve_exits(db: str, *args: str) -> tuple[int, str]:
    """`maestro serve ARGS` with stdin already closed: its exit code and stderr."""
    with anyio.fail_after(START_S):
        done = await anyio.run_process(
            [sys.executable, "-m", "maestro_mcp", "serve", *args],
            input=b"",
            env=user_env(db),
            check=False,
            cwd=str(Path(db).parents[1]),
        )
    return done.returncode, done.stderr.decode()


async def test_a_name_taken_back_after_it_ended_is_the_same_session_with_the_mail_that_waited(
    db: str, view: StoreView
) -> None:
    async with agent(db, name="lead") as lead:
        first = await call(lead, "whoami")
    assert view.status("lead") == "exited"
    async with agent(db, name="bob") as bob:
        await call(bob, "mail_send", to="lead", body="while you were away", subject="news")

    async with agent(db, name="lead") as lead:
        again = await call(lead, "whoami")
        inbox = await call(lead, "mail_inbox")

    assert again["session_id"] == first["session_id"] and again["role"] == "coordinator"
    assert again["unread"] == {"count": 1, "urgent": False}
    assert [(m["sender"], m["body"]) for m in inbox["messages"]] == [("bob", "while you were away")]
    assert view.count("sessions") == 2, "no second session called lead"
    assert view.receipts(inbox["messages"][0]["message_id"]) == {"lead": "delivered"}


async def test_a_name_a_live_server_holds_is_refused_naming_the_holder(db: str, view: StoreView) -> None:
    async with agent(db, name="lead") as lead:
        await call(lead, "whoami")
        pid = view.pid("lead")

        code, stderr = await serve_exits(db, "--name", "lead")

        assert code == 2, stderr
        assert f"'lead' is held by a live session: lead (coordinator, external, pid {pid}" in stderr, stderr
        assert "maestro stop lead" in stderr and "Traceback" not in stderr
        assert view.status("lead") == "working"


async def test_a_name_registered_after_a_server_started_is_refused_at_its_first_call(db: str, view: StoreView) -> None:
    async with agent(db, name="lead") as late:
        with anyio.fail_after(START_S):
            await late._client.list_tools()  # up, and the name still free: it started
        async with agent(db, name="lead") as early:
            await call(early, "whoami")
            with pytest.raises(ToolCallError) as refused:
                await call(late, "whoami")
    assert "'lead' is held by a live session" in refused.value.text and "\n" not in refused.value.text
    assert view.count("sessions") == 1


async def test_a_killed_servers_name_is_taken_back_and_its_parent_told(db: str, view: StoreView) -> None:
    async with agent(db, name="lead") as lead:
        await call(lead, "whoami")
        async with agent(db, name="w1", role="worker", parent="lead") as w1:
            first = await call(w1, "whoami")
            os.kill(view.pid("w1"), signal.SIGKILL)  # no chance to mark its session ended
        assert view.session("w1")["ended_at"] is None  # type: ignore[index]

        async with agent(db, name="w1", role="worker", parent="lead") as again:
            back = await call(again, "whoami")
        told = await call(lead, "mail_wait", timeout_s=10)

    assert back["session_id"] == first["session_id"] and back["coordinator"] == "lead"
    assert any("w1" in m["subject"] and "exited" in m["subject"] for m in told["messages"]), told


async def test_a_worker_started_before_its_coordinator_registers_works_once_it_has(db: str, view: StoreView) -> None:
    async with agent(db, name="w1", role="worker", parent="lead") as w1:
        with pytest.raises(ToolCallError) as early:
            await call(w1, "whoami")
        assert "No parent session 'lead' yet." in early.value.text
        assert view.count("sessions") == 0

        async with agent(db, name="lead") as lead:
            await call(lead, "whoami")
            me = await call(w1, "whoami")

    assert (me["name"], me["role"], me["coordinator"]) == ("w1", "worker", "lead")


async def test_a_worker_name_taken_back_keeps_its_role_parent_and_tool_list(db: str) -> None:
    async with services_at(db) as services:
        lead = await services.sessions.register(name="lead", role=Role.coordinator, agent="script")
        await services.sessions.register(name="w1", role=Role.worker, agent="script", parent="lead")
        w1 = await services.sessions.named("w1")
        assert w1 is not None and lead.session.id
        await services.sessions.end(w1, w1.status.exited)

    # No --role: the name's session says it is a worker, and its server lists a worker's tools at once.
    async with Client(serve_params(db=db, name="w1"), read_timeout_seconds=START_S) as client:
        listed = {t["name"] for t in wire((await client.list_tools()).tools)}
        with anyio.fail_after(CALL_S):
            me = (await client.call_tool("whoami", {})).structured_content or {}
        tools_after = {t["name"] for t in wire((await client.list_tools()).tools)}

    assert listed == WORKER_TOOLS == tools_after != COORDINATOR_TOOLS
    assert (me["name"], me["role"], me["coordinator"]) == ("w1", "worker", "lead")


async def test_taking_a_name_back_under_another_parent_is_refused(db: str) -> None:
    async with services_at(db) as services:
        await services.sessions.register(name="lead", role=Role.coordinator, agent="script")
        await services.sessions.register(name="other", role=Role.coordinator, agent="script")
        await services.sessions.register(name="w1", role=Role.worker, agent="script", parent="lead")
        w1 = await services.sessions.named("w1")
        assert w1 is not None
        await services.sessions.end(w1, w1.status.exited)

    async with agent(db, name="w1", role="worker", parent="other") as client:
        with pytest.raises(ToolCallError) as refused:
            await call(client, "whoami")
    assert "w1 reports to lead, not 'other'." in refused.value.text


async def test_a_server_whose_name_turns_out_a_workers_tells_its_client_to_list_again(db: str) -> None:
    async with Client(serve_params(db=db, name="w1"), read_timeout_seconds=START_S) as client:
        before = {t.name for t in (await client.list_tools()).tools}  # w1 is free: a coordinator by --role
        async with services_at(db) as services:  # meanwhile another server registers w1, a worker, and ends
            await services.sessions.register(name="lead", role=Role.coordinator, agent="script")
            await services.sessions.register(name="w1", role=Role.worker, agent="script", parent="lead")
            w1 = await services.sessions.named("w1")
            assert w1 is not None
            await services.sessions.end(w1, w1.status.exited)
        with anyio.fail_after(CALL_S):
            async with client.listen(tools_list_changed=True) as changes:
                me = (await client.call_tool("whoami", {})).structured_content or {}
                event = await changes.__anext__()
        after = {t.name for t in (await client.list_tools()).tools}

    assert type(event).__name__ == "ToolsListChanged"
    assert (before, after) == (COORDINATOR_TOOLS, WORKER_TOOLS)
    assert (me["name"], me["role"]) == ("w1", "worker")
