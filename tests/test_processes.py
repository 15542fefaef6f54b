"""Real `maestro serve` processes over stdio sharing one store: where processes are the point.

Each agent is an MCP client of its own server subprocess, as an agent CLI would be. Every
wait is bounded with `anyio.fail_after`; nothing sleeps to synchronise.
"""

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

from maestro_mcp.cli.common import services_at
from maestro_mcp.client import AgentClient, serve_params
from maestro_mcp.config import MAX_BODY_BYTES
from maestro_mcp.models import Role

if TYPE_CHECKING:
    from harness import StoreView

pytestmark = pytest.mark.anyio

# Starting a server costs about a second of imports on a slow machine; calls take milliseconds.
START_S = 20
CALL_S = 10


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "project" / ".maestro" / "maestro.db")


@pytest.fixture
def view(db: str, store_view: type[StoreView]) -> StoreView:
    return store_view(db)


@contextlib.asynccontextmanager
async def agent(db: str, **params: Any) -> AsyncIterator[AgentClient]:
    """An agent and its own `maestro serve`. Every request, the handshake included, has a read timeout."""
    async with AgentClient(serve_params(db=db, **params), read_timeout_s=START_S) as client:
        yield client


async def serve_exits(db: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `maestro serve` with stdin already closed; its exit code and stderr."""
    params = serve_params(db=db, env=env)
    with anyio.fail_after(START_S):
        done = await anyio.run_process(
            [sys.executable, *params.args, *args], input=b"", env=params.env, check=False, cwd=str(Path(db).parents[2])
        )
    return done.returncode, done.stderr.decode()


@contextlib.asynccontextmanager
async def alice_and_bob(db: str) -> AsyncIterator[tuple[AgentClient, AgentClient]]:
    """alice, a coordinator, and bob, her worker, each behind its own server, both registered."""
    async with agent(db, name="alice") as alice:
        with anyio.fail_after(CALL_S):
            await alice.call("whoami")  # registers alice, so that bob can name her as his parent
        async with agent(db, name="bob", role="worker", parent="alice") as bob:
            with anyio.fail_after(CALL_S):
                assert (await bob.call("whoami"))["coordinator"] == "alice"
            yield alice, bob


async def test_mail_crosses_processes_and_wakes_the_waiter_with_honest_receipts(db: str, view: StoreView) -> None:
    async with alice_and_bob(db) as (alice, bob):
        got: dict[str, Any] = {}

        async def wait() -> None:
            got.update(await bob.call("mail_wait", timeout_s=30))

        with anyio.fail_after(CALL_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                sent = await alice.call("mail_send", to="children", body="build it", priority="high")

            assert got["timed_out"] is False
            assert [m["body"] for m in got["messages"]] == ["build it"]
            assert got["messages"][0]["sender"] == "alice"

            receipt = (await alice.call("mail_thread", thread_id=sent["thread_id"]))["messages"][0]["receipts"][0]
            assert (receipt["name"], receipt["status"]) == ("bob", "delivered")

            await bob.call("mail_ack", message_ids=[sent["message_id"]])
            receipt = (await alice.call("mail_thread", thread_id=sent["thread_id"]))["messages"][0]["receipts"][0]
            assert receipt["status"] == "acked"
            assert view.receipts(sent["message_id"]) == {"bob": "acked"}


async def test_a_ping_pong_between_processes_is_driven_by_wake_ups(db: str) -> None:
    """Twenty round trips, each side blocked in mail_wait: a 1 s safety poll alone could not finish in time."""
    results: dict[str, list[str]] = {}

    async def play(name: str, me: AgentClient, peer: str, serve: bool) -> None:
        seen: list[str] = []
        if serve:
            await me.call("mail_send", to=peer, body="0")
        while len(seen) < 10:
            waited = await me.call("mail_wait", timeout_s=30)
            for message in waited["messages"]:
                seen.append(message["body"])
                await me.call("mail_send", to=peer, body=str(int(message["body"]) + 1), reply_to=message["message_id"])
        results[name] = seen

    async with alice_and_bob(db) as (alice, bob):
        with anyio.fail_after(CALL_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(play, "bob", bob, "alice", False)
                tg.start_soon(play, "alice", alice, "bob", True)

    assert results["bob"] == [str(i) for i in range(0, 20, 2)]
    assert results["alice"] == [str(i) for i in range(1, 20, 2)]


async def test_a_body_at_the_size_limit_crosses_processes_intact(db: str) -> None:
    """Bigger than a pipe's buffer both ways: the request to alice's server and the result from bob's."""
    unit = "naïve café ✓ "
    body = unit * (MAX_BODY_BYTES // len(unit.encode()))
    assert MAX_BODY_BYTES - len(unit.encode()) < len(body.encode()) <= MAX_BODY_BYTES
    async with alice_and_bob(db) as (alice, bob):
        with anyio.fail_after(CALL_S):
            sent = await alice.call("mail_send", to="bob", body=body)
            inbox = await bob.call("mail_inbox")
    [message] = inbox["messages"]
    assert message["message_id"] == sent["message_id"]
    assert message["body"] == body


async def test_a_broadcast_wakes_waiters_in_several_processes(db: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        alice = await stack.enter_async_context(agent(db, name="alice"))
        with anyio.fail_after(CALL_S):
            await alice.call("whoami")
        workers = {}
        for name in ("w1", "w2"):
            workers[name] = await stack.enter_async_context(agent(db, name=name, role="worker", parent="alice"))
            with anyio.fail_after(CALL_S):
                await workers[name].call("whoami")
        got: dict[str, list[str]] = {}

        async def wait(name: str) -> None:
            got[name] = [m["body"] for m in (await workers[name].call("mail_wait", timeout_s=30))["messages"]]

        with anyio.fail_after(CALL_S):
            async with anyio.create_task_group() as tg:
                for name in workers:
                    tg.start_soon(wait, name)
                sent = await alice.call("mail_send", to="children", body="go")

        assert sorted(sent["recipients"]) == ["w1", "w2"]
        assert got == {"w1": ["go"], "w2": ["go"]}


# -- the end of a session -----------------------------------------------------------------------


async def test_closing_the_agents_stdin_marks_its_session_exited_and_tells_the_parent(db: str, view: StoreView) -> None:
    async with agent(db, name="alice") as alice:
        with anyio.fail_after(CALL_S):
            await alice.call("whoami")
        async with agent(db, name="bob", role="worker", parent="alice") as bob:
            with anyio.fail_after(CALL_S):
                await bob.call("whoami")
            assert view.status("bob") == "working"

        bob_row = view.session("bob")
        assert bob_row is not None
        assert bob_row["status"] == "exited"
        assert bob_row["ended_at"] is not None

        with anyio.fail_after(CALL_S):
            waited = await alice.call("mail_wait", timeout_s=30)
            sessions = {s["name"]: s for s in (await alice.call("list_sessions"))["sessions"]}
        [event] = waited["messages"]
        assert event["type"] == "event"
        assert event["sender"] == "bob"
        assert "bob" in event["subject"] and "exited" in event["subject"]
        assert sessions["bob"]["live"] is False
        assert sessions["alice"]["live"] is True


async def test_an_agent_leaving_during_a_blocked_wait_still_ends_its_session(db: str, view: StoreView) -> None:
    async with agent(db, name="alice") as alice:
        with anyio.fail_after(CALL_S):
            await alice.call("whoami")
        async with anyio.create_task_group() as tg, agent(db, name="bob", role="worker", parent="alice") as bob:
            with anyio.fail_after(CALL_S):
                await bob.call("whoami")

            async def wait_forever() -> None:
                await bob.call("mail_wait", timeout_s=3000)

            tg.start_soon(wait_forever)
            with anyio.fail_after(CALL_S):
                # The event mail below would wake bob's wait; use it only once bob has gone.
                await alice.call("list_sessions")
            tg.cancel_scope.cancel()

        with anyio.fail_after(CALL_S):
            waited = await alice.call("mail_wait", timeout_s=30)
        assert [m["type"] for m in waited["messages"]] == ["event"]
        assert view.status("bob") == "exited"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_to_the_server_marks_its_session_exited_and_tells_the_parent(
    db: str, view: StoreView, signum: signal.Signals
) -> None:
    async with agent(db, name="alice") as alice:
        with anyio.fail_after(CALL_S):
            await alice.call("whoami")
        async with agent(db, name="bob", role="worker", parent="alice") as bob:
            with anyio.fail_after(CALL_S):
                await bob.call("whoami")
            os.kill(view.pid("bob"), signum)

            with anyio.fail_after(CALL_S):
                waited = await alice.call("mail_wait", timeout_s=30)
            [event] = waited["messages"]
            assert (event["type"], event["sender"]) == ("event", "bob")
            assert view.status("bob") == "exited"


async def test_a_plain_server_that_gets_no_tool_call_leaves_no_session(db: str, view: StoreView) -> None:
    """Agent CLIs start a throw-away server for every health check (`claude mcp list`)."""
    for _ in range(2):
        with anyio.fail_after(START_S):
            async with Client(serve_params(db=db)) as client:
                tools = {t.name for t in (await client.list_tools()).tools}
        assert {"whoami", "mail_send", "mail_wait"} <= tools
    assert view.count("sessions") == 0
    assert view.count("messages") == 0


# -- identity at start --------------------------------------------------------------------------


async def test_a_server_resumes_a_session_from_its_id_and_token(db: str, view: StoreView) -> None:
    async with services_at(db) as services:
        await services.sessions.register(name="alice", role=Role.coordinator, agent="script")
        bob = await services.sessions.register(name="bob", role=Role.worker, agent="claude", parent="alice")
        await services.mail.send(
            (await services.sessions.get("alice")), "bob", "waiting for you since before you started"
        )

    async with agent(db, session=bob.session.id, token=bob.token) as client:
        with anyio.fail_after(CALL_S):
            me = await client.call("whoami")
            waited = await client.call("mail_wait", timeout_s=5)
        assert (me["session_id"], me["name"], me["agent"], me["coordinator"]) == (
            bob.session.id,
            "bob",
            "claude",
            "alice",
        )
        assert [m["body"] for m in waited["messages"]] == ["waiting for you since before you started"]
        row = view.session("bob")
        assert row is not None and row["pid"] and row["pid"] != os.getpid()
    assert view.count("sessions") == 2, "resuming registers nothing new"
    assert view.status("bob") == "exited"


async def test_an_ended_session_resumed_with_its_token_is_live_again(db: str, view: StoreView) -> None:
    async with services_at(db) as services:
        solo = await services.sessions.register(name="solo", role=Role.coordinator, agent="script")
    async with agent(db, session=solo.session.id, token=solo.token) as client:
        with anyio.fail_after(CALL_S):
            await client.call("whoami")
    assert view.status("solo") == "exited"

    async with agent(db, session=solo.session.id, token=solo.token) as client:
        with anyio.fail_after(CALL_S):
            sessions = (await client.call("list_sessions"))["sessions"]
        assert [(s["name"], s["status"], s["live"]) for s in sessions] == [("solo", "working", True)]


async def test_a_wrong_token_is_refused_at_start_with_a_clear_message(db: str, view: StoreView) -> None:
    async with services_at(db) as services:
        bob = await services.sessions.register(name="bob", role=Role.coordinator, agent="script")
    before = view.snapshot()

    code, stderr = await serve_exits(db, env={"MAESTRO_SESSION": bob.session.id, "MAESTRO_TOKEN": "not-the-token"})

    assert code != 0
    assert "MAESTRO_SESSION" in stderr and bob.session.id in stderr and "not a valid session" in stderr
    assert "Traceback" not in stderr
    assert view.snapshot() == before


async def test_a_token_for_an_unknown_session_is_refused(db: str) -> None:
    code, stderr = await serve_exits(db, env={"MAESTRO_SESSION": "s-nosuchthing", "MAESTRO_TOKEN": "whatever"})

    assert code != 0
    assert "s-nosuchthing" in stderr and "Traceback" not in stderr


async def test_only_one_of_session_and_token_is_refused(db: str) -> None:
    code, stderr = await serve_exits(db, env={"MAESTRO_SESSION": "s-abc"})

    assert code != 0
    assert "MAESTRO_TOKEN" in stderr and "Traceback" not in stderr


async def test_a_name_a_live_session_holds_is_refused_at_start_naming_the_holder(db: str, view: StoreView) -> None:
    async with services_at(db) as services:
        await services.sessions.register(name="alice", role=Role.coordinator, agent="script")

    code, stderr = await serve_exits(db, "--name", "alice")

    assert code != 0
    assert "'alice' is held by a live session: alice (coordinator, script" in stderr, stderr
    assert "maestro stop alice" in stderr and "Traceback" not in stderr
    assert view.count("sessions") == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--name", "all"], "reserved"),
        (["--name", "a b"], "name"),
    ],
    ids=["reserved name", "invalid name"],
)
async def test_bad_registration_flags_are_refused_at_start(
    db: str, view: StoreView, args: list[str], says: str
) -> None:
    code, stderr = await serve_exits(db, *args)

    assert code != 0
    assert says in stderr and "Traceback" not in stderr
    assert view.count("sessions") == 0


async def test_servers_started_at_once_on_a_new_project_all_work(tmp_path: Path) -> None:
    """They race to create and migrate the store; each must come up and see the others' mail."""
    db = str(tmp_path / "fresh" / ".maestro" / "maestro.db")
    names = ["a1", "a2", "a3"]
    results: dict[str, dict[str, Any]] = {}

    async def run(name: str, started: anyio.Event, go: anyio.Event) -> None:
        async with agent(db, name=name) as client:
            with anyio.fail_after(CALL_S):
                await client.call("whoami")
                started.set()
                await go.wait()
                await client.call("mail_send", to="all", body=f"hi from {name}")
                got: list[str] = []
                while len(got) < len(names) - 1:
                    got += [m["body"] for m in (await client.call("mail_wait", timeout_s=10))["messages"]]
                results[name] = {"got": sorted(got)}

    go = anyio.Event()
    events = {name: anyio.Event() for name in names}
    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(run, name, events[name], go)
        with anyio.fail_after(START_S):
            for event in events.values():
                await event.wait()
        go.set()

    for name in names:
        assert results[name]["got"] == sorted(f"hi from {other}" for other in names if other != name)


async def test_a_sender_killed_mid_send_loses_no_acknowledged_message_and_duplicates_none(
    db: str, view: StoreView
) -> None:
    async with services_at(db) as services:
        await services.sessions.register(name="sink", role=Role.coordinator, agent="script")
    confirmed: list[str] = []
    enough = anyio.Event()

    async with agent(db, name="sender", role="worker", parent="sink") as sender:
        with anyio.fail_after(CALL_S):
            await sender.call("whoami")
        pid = view.pid("sender")

        async def pump(lane: int) -> None:
            for i in range(10_000):
                body = f"{lane}-{i}"
                await sender.call("mail_send", to="sink", body=body)
                confirmed.append(body)
                if len(confirmed) >= 60:
                    enough.set()

        async def lane(n: int) -> None:
            with contextlib.suppress(Exception):
                await pump(n)

        with anyio.fail_after(CALL_S):
            async with anyio.create_task_group() as tg:
                for n in range(4):  # several sends in flight at the moment of the kill
                    tg.start_soon(lane, n)
                await enough.wait()
                os.kill(pid, signal.SIGKILL)

    stored = view.bodies()
    assert len(stored) == len(set(stored)), "no message was stored twice"
    assert set(confirmed) <= set(stored), "every send reported as sent survived the kill"
    assert len(stored) - len(confirmed) <= 4, "at most the sends in flight were committed without a reply"
    assert view.count("receipts") == len(stored), "each stored message has exactly its one receipt"
    # The killed server could not mark itself; the store is still usable by everyone else.
    async with agent(db, session=None) as other:
        with anyio.fail_after(CALL_S):
            assert (await other.call("mail_send", to="sink", body="after the kill"))["recipients"] == ["sink"]
