"""whoami, list_sessions, and lazy registration, over an in-memory MCP client."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from maestro_mcp.models import Role, SessionStatus

if TYPE_CHECKING:
    from harness import Team

pytestmark = pytest.mark.anyio


async def test_whoami_of_a_root_coordinator_names_no_coordinator(team: Team) -> None:
    alice = await team.agent("alice")

    me = await alice.call("whoami")

    assert me["session_id"] == alice.id
    assert me["name"] == "alice"
    assert me["role"] == "coordinator"
    assert me["agent"] == "script"
    assert me["parent"] is None
    assert me["coordinator"] is None
    assert me["coordinator_live"] is None
    assert me["siblings"] == []
    assert me["tasks"] == []
    assert me["directives"] == []
    assert me["unread"] == {"count": 0, "urgent": False}


async def test_whoami_of_a_worker_names_its_coordinator_parent_and_siblings(team: Team) -> None:
    await team.agent("alice")
    bob = await team.agent("bob", Role.worker, parent="alice")
    await team.agent("carol", Role.worker, parent="alice")
    await team.agent("dave", Role.worker, parent="alice")

    me = await bob.call("whoami")

    assert me["role"] == "worker"
    assert me["parent"] == "alice"
    assert me["coordinator"] == "alice"
    assert me["coordinator_live"] is True
    assert sorted(s["name"] for s in me["siblings"]) == ["carol", "dave"]
    assert all(s["parent"] == "alice" and s["live"] for s in me["siblings"])


async def test_whoami_coordinator_is_the_nearest_coordinator_ancestor_not_the_parent(team: Team) -> None:
    await team.agent("alice")
    await team.agent("lead", Role.worker, parent="alice")
    helper = await team.agent("helper", Role.worker, parent="lead")

    me = await helper.call("whoami")

    assert me["parent"] == "lead"
    assert me["coordinator"] == "alice"


async def test_whoami_says_when_the_coordinator_has_ended(team: Team) -> None:
    alice = await team.agent("alice")
    bob = await team.agent("bob", Role.worker, parent="alice")

    await team.services.sessions.end(alice.session, SessionStatus.exited)
    me = await bob.call("whoami")

    assert me["coordinator"] == "alice"
    assert me["coordinator_live"] is False


async def test_whoami_reports_unread_and_urgent_mail(team: Team) -> None:
    alice = await team.agent("alice")
    bob = await team.agent("bob", Role.worker, parent="alice")

    await alice.call("mail_send", to="bob", body="fyi", priority="low")
    assert (await bob.call("whoami"))["unread"] == {"count": 1, "urgent": False}

    await alice.call("mail_send", to="bob", body="now!", priority="high")
    assert (await bob.call("whoami"))["unread"] == {"count": 2, "urgent": True}


async def test_whoami_does_not_mark_mail_delivered(team: Team) -> None:
    alice = await team.agent("alice")
    bob = await team.agent("bob", Role.worker, parent="alice")
    sent = await alice.call("mail_send", to="bob", body="hello")

    await bob.call("whoami")

    assert team.view.receipts(sent["message_id"]) == {"bob": "sent"}


async def test_tools_ignore_unknown_extra_arguments(team: Team) -> None:
    """Gemini CLI adds wait_for_previous to every call; the call must still work."""
    alice = await team.agent("alice")
    await team.agent("bob", Role.worker, parent="alice")

    assert (await alice.call("whoami", wait_for_previous=True))["name"] == "alice"
    assert (await alice.call("list_sessions", wait_for_previous=True, bogus=1))["sessions"]
    sent = await alice.call("mail_send", to="bob", body="hi", wait_for_previous=True)
    assert sent["recipients"] == ["bob"]
    assert (await alice.call("mail_inbox", wait_for_previous=True))["messages"] == []


# -- lazy registration --------------------------------------------------------------------------


async def test_a_plain_server_registers_its_session_on_the_first_tool_call(team: Team) -> None:
    await team.agent("alice")
    worker = await team.agent("w1", Role.worker, parent="alice", lazy=True)
    assert team.view.count("sessions") == 1, "nothing is registered before a tool call"

    me = await worker.call("whoami")

    assert team.view.count("sessions") == 2
    assert me["name"] == "w1"
    assert me["role"] == "worker"
    assert me["coordinator"] == "alice"
    assert me["session_id"] == worker.id


async def test_a_plain_server_without_a_name_gets_a_generated_one_and_keeps_it(team: Team) -> None:
    anon = await team.agent(None, lazy=True)

    first = await anon.call("whoami")
    second = await anon.call("whoami")

    assert first["name"] and first["name"] == second["name"]
    assert first["session_id"] == second["session_id"]
    assert team.view.count("sessions") == 1


async def test_concurrent_first_calls_register_exactly_one_session(team: Team) -> None:
    import anyio

    anon = await team.agent("solo", lazy=True)
    ids: list[str] = []

    async def ask() -> None:
        ids.append((await anon.call("whoami"))["session_id"])

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(ask)

    assert len(set(ids)) == 1
    assert team.view.count("sessions") == 1


# -- list_sessions / siblings --------------------------------------------------------------


async def test_list_sessions_shows_everyone_with_parent_names_and_liveness(team: Team) -> None:
    alice = await team.agent("alice")
    bob = await team.agent("bob", Role.worker, parent="alice")
    await team.agent("carol", Role.worker, parent="alice")
    await team.services.sessions.end(bob.session, SessionStatus.exited, exit_code=3)

    sessions = {s["name"]: s for s in (await alice.call("list_sessions"))["sessions"]}

    assert set(sessions) == {"alice", "bob", "carol"}
    assert sessions["bob"]["parent"] == "alice"
    assert sessions["bob"]["status"] == "exited"
    assert sessions["bob"]["live"] is False
    assert sessions["bob"]["exit_code"] == 3
    assert sessions["carol"]["live"] is True
    assert sessions["alice"]["parent"] is None
    assert sessions["alice"]["session_id"] == alice.id


async def test_list_sessions_filters_by_role_and_status(team: Team) -> None:
    alice = await team.agent("alice")
    bob = await team.agent("bob", Role.worker, parent="alice")
    await team.agent("carol", Role.worker, parent="alice")
    await team.agent("olga", Role.operator)
    await team.services.sessions.end(bob.session, SessionStatus.exited)

    async def names(**filters: str) -> list[str]:
        return sorted(s["name"] for s in (await alice.call("list_sessions", **filters))["sessions"])

    assert await names(role="worker") == ["bob", "carol"]
    assert await names(role="operator") == ["olga"]
    assert await names(status="exited") == ["bob"]
    assert await names(role="worker", status="working") == ["carol"]
    assert await names(role="coordinator", status="exited") == []


async def test_list_sessions_refuses_an_unknown_role_or_status(team: Team) -> None:
    alice = await team.agent("alice")

    assert "role" in await alice.error("list_sessions", role="boss")
    assert "status" in await alice.error("list_sessions", status="sleeping")


async def test_whoami_lists_the_other_children_of_my_parent_as_siblings(team: Team) -> None:
    alice = await team.agent("alice")
    bob = await team.agent("bob", Role.worker, parent="alice")
    await team.agent("carol", Role.worker, parent="alice")
    await team.agent("grandchild", Role.worker, parent="carol")
    await team.agent("other-root")

    siblings = (await bob.call("whoami"))["siblings"]

    assert [s["name"] for s in siblings] == ["carol"]
    assert siblings[0]["live"] is True
    assert (await alice.call("whoami"))["siblings"] == [], "a root session has no siblings"


async def test_every_session_tool_result_carries_unread(team: Team) -> None:
    alice = await team.agent("alice")
    bob = await team.agent("bob", Role.worker, parent="alice")
    await alice.call("mail_send", to="bob", body="urgent", priority="critical")

    for tool in ("whoami", "list_sessions"):
        assert (await bob.call(tool))["unread"] == {"count": 1, "urgent": True}, tool
