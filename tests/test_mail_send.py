"""mail_send: targets, one receipt per recipient, threads, and every refused input leaving the store alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from maestro_mcp.config import MAX_BODY_BYTES
from maestro_mcp.models import Role, SessionStatus

if TYPE_CHECKING:
    from harness import Agent, Team

pytestmark = pytest.mark.anyio


async def family(team: Team) -> dict[str, Agent]:
    """alice (coordinator) -> bob, carol, dave (workers); carol -> erin (worker); zed: another root."""
    agents = {"alice": await team.agent("alice")}
    for name in ("bob", "carol", "dave"):
        agents[name] = await team.agent(name, Role.worker, parent="alice")
    agents["erin"] = await team.agent("erin", Role.worker, parent="carol")
    agents["zed"] = await team.agent("zed")
    return agents


async def send(agent: Agent, to: Any, body: str = "hello", **kw: Any) -> dict[str, Any]:
    return await agent.call("mail_send", to=to, body=body, **kw)


# -- targets ------------------------------------------------------------------------------------


async def test_send_to_a_name_or_an_id_reaches_exactly_that_session(team: Team) -> None:
    a = await family(team)

    by_name = await send(a["alice"], "bob")
    by_id = await send(a["alice"], a["carol"].id)

    assert by_name["recipients"] == ["bob"]
    assert by_id["recipients"] == ["carol"]
    assert team.view.receipts(by_name["message_id"]) == {"bob": "sent"}
    assert team.view.receipts(by_id["message_id"]) == {"carol": "sent"}


@pytest.mark.parametrize(
    ("sender", "scope", "expected"),
    [
        ("bob", "coordinator", ["alice"]),
        ("erin", "coordinator", ["alice"]),  # the nearest coordinator above, not the worker parent
        ("erin", "parent", ["carol"]),
        ("bob", "parent", ["alice"]),
        ("alice", "children", ["bob", "carol", "dave"]),
        ("carol", "children", ["erin"]),
        ("bob", "siblings", ["carol", "dave"]),
        ("alice", "all", ["bob", "carol", "dave", "erin", "zed"]),
        ("erin", "all", ["alice", "bob", "carol", "dave", "zed"]),
    ],
)
async def test_scopes_resolve_to_the_right_sessions_and_never_to_the_sender(
    team: Team, sender: str, scope: str, expected: list[str]
) -> None:
    a = await family(team)

    sent = await send(a[sender], scope)

    assert sorted(sent["recipients"]) == expected
    assert sorted(team.view.receipts(sent["message_id"])) == expected


async def test_a_list_of_targets_mixes_names_ids_and_scopes_with_one_receipt_each(team: Team) -> None:
    a = await family(team)

    sent = await send(a["bob"], ["coordinator", "alice", a["alice"].id, "siblings", "carol", "zed"])

    assert sorted(sent["recipients"]) == ["alice", "carol", "dave", "zed"]
    assert team.view.receipts(sent["message_id"]) == {
        "alice": "sent",
        "carol": "sent",
        "dave": "sent",
        "zed": "sent",
    }


async def test_scopes_skip_ended_sessions_but_a_name_still_reaches_one_with_a_warning(team: Team) -> None:
    a = await family(team)
    await team.services.sessions.end(a["dave"].session, SessionStatus.exited)

    children = await send(a["alice"], "children")
    direct = await send(a["alice"], "dave")

    assert sorted(children["recipients"]) == ["bob", "carol"]
    assert children["warnings"] == []
    assert direct["recipients"] == ["dave"]
    assert len(direct["warnings"]) == 1 and "dave" in direct["warnings"][0]


async def test_a_session_may_mail_itself_by_name(team: Team) -> None:
    alice = await team.agent("alice")

    sent = await send(alice, "alice", "note to self")
    inbox = await alice.call("mail_inbox")

    assert sent["recipients"] == ["alice"]
    assert sent["unread"] == {"count": 1, "urgent": False}, "the result counts the message just sent"
    assert [m["body"] for m in inbox["messages"]] == ["note to self"]


async def test_send_result_names_the_message_and_a_new_thread(team: Team) -> None:
    a = await family(team)

    sent = await send(a["alice"], "bob", subject="plan", priority="high", task_id="t-123")
    message = (await a["bob"].call("mail_inbox"))["messages"][0]

    assert sent["thread_id"] == sent["message_id"], "a message without thread starts its own"
    assert message == {
        "message_id": sent["message_id"],
        "thread_id": sent["message_id"],
        "reply_to": None,
        "sender": "alice",
        "subject": "plan",
        "body": "hello",
        "priority": "high",
        "type": "message",
        "task_id": "t-123",
        "created_at": message["created_at"],
    }
    assert message["created_at"].endswith("Z")


# -- threads ------------------------------------------------------------------------------------


async def test_reply_to_puts_the_answer_in_the_original_thread(team: Team) -> None:
    a = await family(team)
    question = await send(a["alice"], "bob", "question?")
    answer = await send(a["bob"], "coordinator", "answer.", reply_to=question["message_id"])
    follow_up = await send(a["bob"], "coordinator", "and more", thread_id=question["thread_id"])

    assert answer["thread_id"] == question["thread_id"]
    assert follow_up["thread_id"] == question["thread_id"]
    got = (await a["alice"].call("mail_inbox"))["messages"]
    assert [(m["body"], m["reply_to"], m["thread_id"]) for m in got] == [
        ("answer.", question["message_id"], question["thread_id"]),
        ("and more", None, question["thread_id"]),
    ]


async def test_a_reply_to_a_reply_stays_in_the_root_thread(team: Team) -> None:
    a = await family(team)
    first = await send(a["alice"], "bob", "1")
    second = await send(a["bob"], "alice", "2", reply_to=first["message_id"])
    third = await send(a["alice"], "bob", "3", reply_to=second["message_id"])

    assert third["thread_id"] == first["message_id"]
    thread = await a["alice"].call("mail_thread", thread_id=first["thread_id"])
    assert [m["body"] for m in thread["messages"]] == ["1", "2", "3"]


# -- refused input ------------------------------------------------------------------------------


BAD_SENDS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("unknown recipient", {"to": "nobody"}, ["nobody", "list_sessions"]),
    ("unknown recipient in a list", {"to": ["bob", "nobody"]}, ["nobody"]),
    ("empty to", {"to": []}, ["empty"]),
    ("blank target", {"to": ["bob", "  "]}, ["empty"]),
    ("empty body", {"body": ""}, ["empty"]),
    ("blank body", {"body": "   \n "}, ["empty"]),
    ("oversized body", {"body": "x" * (MAX_BODY_BYTES + 1)}, [str(MAX_BODY_BYTES + 1), str(MAX_BODY_BYTES)]),
    ("oversized multibyte body", {"body": "é" * (MAX_BODY_BYTES // 2 + 1)}, [str(MAX_BODY_BYTES)]),
    ("bad priority", {"priority": "urgent"}, ["priority", "critical"]),
    ("unknown thread", {"thread_id": "m-doesnotexist"}, ["m-doesnotexist"]),
    ("unknown reply_to", {"reply_to": "m-doesnotexist"}, ["m-doesnotexist"]),
    ("oversized subject", {"subject": "s" * 301}, ["subject"]),
    ("no coordinator above a root", {"to": "coordinator"}, ["coordinator"]),
    ("no parent of a root", {"to": "parent"}, ["parent"]),
    ("a scope with nobody in it", {"to": "siblings"}, ["siblings"]),
]


@pytest.mark.parametrize(("case", "override", "says"), BAD_SENDS, ids=[c[0] for c in BAD_SENDS])
async def test_a_refused_send_says_why_and_changes_nothing(
    team: Team, case: str, override: dict[str, Any], says: list[str]
) -> None:
    a = await family(team)
    await send(a["bob"], "alice", "an earlier message")  # so there is a thread and a receipt to disturb
    before = team.view.snapshot()

    arguments = {"to": "bob", "body": "hello", **override}
    text = await a["alice"].error("mail_send", **arguments)

    for word in says:
        assert word in text, f"{case}: {text!r} should mention {word!r}"
    assert team.view.snapshot() == before


async def test_a_body_exactly_at_the_limit_is_accepted(team: Team) -> None:
    a = await family(team)

    sent = await send(a["alice"], "bob", "x" * MAX_BODY_BYTES)

    got = (await a["bob"].call("mail_inbox"))["messages"]
    assert got[0]["message_id"] == sent["message_id"]
    assert len(got[0]["body"]) == MAX_BODY_BYTES


async def test_reply_to_and_a_different_thread_id_is_refused(team: Team) -> None:
    a = await family(team)
    one = await send(a["alice"], "bob", "one")
    two = await send(a["alice"], "bob", "two")
    before = team.view.snapshot()

    text = await a["bob"].error(
        "mail_send", to="alice", body="?", reply_to=one["message_id"], thread_id=two["thread_id"]
    )

    assert one["message_id"] in text and "reply_to" in text
    assert team.view.snapshot() == before


async def test_send_result_carries_the_senders_unread(team: Team) -> None:
    a = await family(team)
    await send(a["bob"], "alice", "ping", priority="high")

    sent = await send(a["alice"], "bob", "pong")

    assert sent["unread"] == {"count": 1, "urgent": True}
