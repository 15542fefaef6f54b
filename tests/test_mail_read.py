"""mail_inbox, mail_wait, mail_thread, mail_ack: ordering, honest receipts, waiting and cancelling."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from maestro_mcp.config import MAX_WAIT_S
from maestro_mcp.models import Role
from maestro_mcp.service import mail as mail_service
from maestro_mcp.store import Subscription

if TYPE_CHECKING:
    from harness import Agent, Team

pytestmark = pytest.mark.anyio


async def pair(team: Team) -> tuple[Agent, Agent]:
    alice = await team.agent("alice")
    bob = await team.agent("bob", Role.worker, parent="alice")
    return alice, bob


def bodies(result: dict[str, Any]) -> list[str]:
    return [m["body"] for m in result["messages"]]


@pytest.fixture
def no_safety_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the notifier can wake a waiter: the safety-net poll is pushed out of any test's reach."""
    monkeypatch.setattr(mail_service, "SAFETY_POLL_S", 600.0)


def spy_subscriptions(monkeypatch: pytest.MonkeyPatch, team: Team) -> anyio.Event:
    """An event set once a waiter has subscribed to its mail (it is about to look, then sleep)."""
    subscribed = anyio.Event()
    original = team.store.subscribe

    @contextlib.asynccontextmanager
    async def subscribe(topic: str) -> AsyncIterator[Subscription]:
        async with original(topic) as sub:
            subscribed.set()
            yield sub

    monkeypatch.setattr(team.store, "subscribe", subscribe)
    return subscribed


# -- mail_inbox ---------------------------------------------------------------------------------


async def test_inbox_returns_critical_to_low_then_oldest_first(team: Team) -> None:
    alice, bob = await pair(team)
    for body, priority in [
        ("n1", "normal"),
        ("l1", "low"),
        ("h1", "high"),
        ("c1", "critical"),
        ("n2", "normal"),
        ("h2", "high"),
        ("l2", "low"),
        ("c2", "critical"),
    ]:
        await alice.call("mail_send", to="bob", body=body, priority=priority)

    inbox = await bob.call("mail_inbox")

    assert bodies(inbox) == ["c1", "c2", "h1", "h2", "n1", "n2", "l1", "l2"]
    assert [m["priority"] for m in inbox["messages"]][:2] == ["critical", "critical"]
    assert inbox["remaining"] == 0
    assert inbox["unread"] == {"count": 0, "urgent": False}


async def test_inbox_marks_only_what_it_returns_as_delivered(team: Team) -> None:
    alice, bob = await pair(team)
    sent = [(await alice.call("mail_send", to="bob", body=f"m{i}"))["message_id"] for i in range(5)]

    first = await bob.call("mail_inbox", limit=2)

    assert bodies(first) == ["m0", "m1"]
    assert first["remaining"] == 3
    assert first["unread"] == {"count": 3, "urgent": False}
    assert [team.view.receipts(m)["bob"] for m in sent] == ["delivered", "delivered", "sent", "sent", "sent"]

    rest = await bob.call("mail_inbox", limit=20)
    assert bodies(rest) == ["m2", "m3", "m4"]
    assert (await bob.call("mail_inbox"))["messages"] == [], "delivered mail is not returned as unread again"


async def test_inbox_with_unread_only_false_lists_seen_mail_after_unread(team: Team) -> None:
    alice, bob = await pair(team)
    await alice.call("mail_send", to="bob", body="old")
    await bob.call("mail_inbox")
    await alice.call("mail_send", to="bob", body="new")

    everything = await bob.call("mail_inbox", unread_only=False)

    assert bodies(everything) == ["new", "old"]
    assert team.view.count("receipts") == 2
    assert everything["unread"]["count"] == 0


async def test_inbox_with_unread_only_false_fills_the_limit_with_the_newest_seen_mail(team: Team) -> None:
    alice, bob = await pair(team)
    for i in range(4):
        await alice.call("mail_send", to="bob", body=f"old{i}")
    await bob.call("mail_inbox")
    await alice.call("mail_send", to="bob", body="new")

    everything = await bob.call("mail_inbox", limit=3, unread_only=False)

    assert bodies(everything) == ["new", "old3", "old2"]


async def test_inbox_is_per_recipient(team: Team) -> None:
    alice, bob = await pair(team)
    carol = await team.agent("carol", Role.worker, parent="alice")
    sent = await alice.call("mail_send", to="children", body="to both")

    assert bodies(await bob.call("mail_inbox")) == ["to both"]

    assert team.view.receipts(sent["message_id"]) == {"bob": "delivered", "carol": "sent"}
    assert bodies(await carol.call("mail_inbox")) == ["to both"]
    assert (await alice.call("mail_inbox"))["messages"] == [], "the sender gets no copy"


@pytest.mark.parametrize("limit", [0, -1, 501])
async def test_inbox_refuses_a_limit_out_of_range(team: Team, limit: int) -> None:
    alice, bob = await pair(team)
    await alice.call("mail_send", to="bob", body="keep me unread")
    before = team.view.snapshot()

    text = await bob.error("mail_inbox", limit=limit)

    assert f"limit={limit}" in text and "500" in text
    assert team.view.snapshot() == before


# -- receipts -----------------------------------------------------------------------------------


async def test_receipts_are_honest_from_sent_through_delivered_to_acked(team: Team) -> None:
    alice, bob = await pair(team)
    sent = await alice.call("mail_send", to="bob", body="please ack")

    async def receipt() -> dict[str, Any]:
        thread = await alice.call("mail_thread", thread_id=sent["thread_id"])
        [message] = thread["messages"]
        [only] = message["receipts"]
        return dict(only)

    first = await receipt()
    assert first == {"session_id": bob.id, "name": "bob", "status": "sent", "delivered_at": None, "acked_at": None}

    # Being told there is mail is not delivery: only being shown the message is.
    await bob.call("whoami")
    await bob.call("list_sessions")
    await bob.call("mail_send", to="alice", body="unrelated")
    assert (await receipt())["status"] == "sent"

    await bob.call("mail_inbox")
    delivered = await receipt()
    assert delivered["status"] == "delivered"
    assert delivered["delivered_at"] is not None and delivered["acked_at"] is None

    await bob.call("mail_inbox", unread_only=False)
    assert (await receipt())["status"] == "delivered", "seeing it again is not an acknowledgement"

    acked = await bob.call("mail_ack", message_ids=[sent["message_id"]])
    assert acked["acked"] == [sent["message_id"]]
    final = await receipt()
    assert final["status"] == "acked"
    assert final["delivered_at"] == delivered["delivered_at"]
    assert final["acked_at"] is not None and final["acked_at"] >= final["delivered_at"]


async def test_each_recipient_has_its_own_receipt(team: Team) -> None:
    alice, bob = await pair(team)
    carol = await team.agent("carol", Role.worker, parent="alice")
    await team.agent("dave", Role.worker, parent="alice")
    sent = await alice.call("mail_send", to="children", body="all hands")

    await bob.call("mail_inbox")
    await carol.call("mail_inbox")
    await carol.call("mail_ack", message_ids=[sent["message_id"]])

    thread = await alice.call("mail_thread", thread_id=sent["thread_id"])
    receipts = {r["name"]: r["status"] for r in thread["messages"][0]["receipts"]}
    assert receipts == {"bob": "delivered", "carol": "acked", "dave": "sent"}


async def test_reading_a_thread_delivers_only_the_readers_own_receipts(team: Team) -> None:
    alice, bob = await pair(team)
    carol = await team.agent("carol", Role.worker, parent="alice")
    sent = await alice.call("mail_send", to=["bob", "carol"], body="in a thread")

    shown = await bob.call("mail_thread", thread_id=sent["thread_id"])

    assert bodies(shown) == ["in a thread"]
    assert team.view.receipts(sent["message_id"]) == {"bob": "delivered", "carol": "sent"}
    assert (await bob.call("mail_inbox"))["messages"] == [], "bob has been shown it already"
    assert bodies(await carol.call("mail_inbox")) == ["in a thread"]


async def test_the_sender_reading_its_thread_changes_no_receipt(team: Team) -> None:
    alice, _bob = await pair(team)
    sent = await alice.call("mail_send", to="bob", body="x")
    before = team.view.snapshot()

    await alice.call("mail_thread", thread_id=sent["thread_id"])

    assert team.view.snapshot() == before


async def test_mail_thread_refuses_an_unknown_thread(team: Team) -> None:
    alice, bob = await pair(team)
    await alice.call("mail_send", to="bob", body="x")
    before = team.view.snapshot()

    text = await bob.error("mail_thread", thread_id="m-nope")

    assert "m-nope" in text
    assert team.view.snapshot() == before


# -- mail_ack -----------------------------------------------------------------------------------


async def test_ack_before_reading_also_records_delivery(team: Team) -> None:
    alice, bob = await pair(team)
    sent = await alice.call("mail_send", to="bob", body="x", priority="high")

    acked = await bob.call("mail_ack", message_ids=[sent["message_id"], sent["message_id"]])

    assert acked["acked"] == [sent["message_id"]]
    assert acked["unread"] == {"count": 0, "urgent": False}
    receipt = (await alice.call("mail_thread", thread_id=sent["thread_id"]))["messages"][0]["receipts"][0]
    assert receipt["status"] == "acked"
    assert receipt["delivered_at"] is not None


async def test_acking_twice_keeps_the_first_acknowledgement(team: Team) -> None:
    alice, bob = await pair(team)
    sent = await alice.call("mail_send", to="bob", body="x")
    await bob.call("mail_ack", message_ids=[sent["message_id"]])
    before = team.view.snapshot()

    again = await bob.call("mail_ack", message_ids=[sent["message_id"]])

    assert again["acked"] == [sent["message_id"]]
    assert team.view.snapshot() == before


async def test_acking_another_sessions_mail_is_refused_and_acks_nothing(team: Team) -> None:
    alice, _bob = await pair(team)
    carol = await team.agent("carol", Role.worker, parent="alice")
    to_bob = await alice.call("mail_send", to="bob", body="for bob")
    to_carol = await alice.call("mail_send", to="carol", body="for carol")
    before = team.view.snapshot()

    text = await carol.error("mail_ack", message_ids=[to_carol["message_id"], to_bob["message_id"]])

    assert to_bob["message_id"] in text and "not sent to you" in text
    assert team.view.snapshot() == before, "not even carol's own message was acked"


async def test_the_sender_cannot_ack_on_behalf_of_the_recipient(team: Team) -> None:
    alice, _bob = await pair(team)
    sent = await alice.call("mail_send", to="bob", body="x")
    before = team.view.snapshot()

    await alice.error("mail_ack", message_ids=[sent["message_id"]])

    assert team.view.snapshot() == before


@pytest.mark.parametrize(
    ("ids", "says"),
    [(["m-unknown"], "m-unknown"), ([], "empty"), (["", "  "], "empty")],
    ids=["unknown id", "no ids", "blank ids"],
)
async def test_acking_bad_ids_is_refused_and_changes_nothing(team: Team, ids: list[str], says: str) -> None:
    alice, bob = await pair(team)
    sent = await alice.call("mail_send", to="bob", body="x")
    before = team.view.snapshot()

    text = await bob.error("mail_ack", message_ids=[*ids, sent["message_id"]] if ids == ["m-unknown"] else ids)

    assert says in text
    assert team.view.snapshot() == before


# -- mail_wait ----------------------------------------------------------------------------------


async def test_wait_returns_waiting_mail_at_once_in_priority_order(team: Team) -> None:
    alice, bob = await pair(team)
    await alice.call("mail_send", to="bob", body="low", priority="low")
    await alice.call("mail_send", to="bob", body="crit", priority="critical")
    await alice.call("mail_send", to="bob", body="norm")

    with anyio.fail_after(5):
        waited = await bob.call("mail_wait", timeout_s=30)

    assert waited["timed_out"] is False
    assert bodies(waited) == ["crit", "norm", "low"]
    assert waited["unread"] == {"count": 0, "urgent": False}


async def test_wait_returns_at_most_max_messages_and_leaves_the_rest_unread(team: Team) -> None:
    alice, bob = await pair(team)
    for i in range(4):
        await alice.call("mail_send", to="bob", body=f"m{i}", priority="high")

    with anyio.fail_after(5):
        waited = await bob.call("mail_wait", timeout_s=1, max_messages=3)

    assert bodies(waited) == ["m0", "m1", "m2"]
    assert waited["unread"] == {"count": 1, "urgent": True}


async def test_wait_times_out_with_nothing_and_marks_nothing(team: Team) -> None:
    _alice, bob = await pair(team)
    await bob.call("mail_send", to="alice", body="for alice only")
    before = team.view.snapshot()

    with anyio.fail_after(5):
        started = anyio.current_time()
        waited = await bob.call("mail_wait", timeout_s=0.2)
        elapsed = anyio.current_time() - started

    assert waited == {"messages": [], "timed_out": True, "unread": {"count": 0, "urgent": False}}
    assert elapsed >= 0.2
    assert team.view.snapshot() == before


async def test_wait_with_zero_timeout_is_a_non_blocking_check(team: Team) -> None:
    alice, bob = await pair(team)

    with anyio.fail_after(5):
        assert (await bob.call("mail_wait", timeout_s=0))["timed_out"] is True
        await alice.call("mail_send", to="bob", body="now there is")
        waited = await bob.call("mail_wait", timeout_s=0)

    assert waited["timed_out"] is False
    assert bodies(waited) == ["now there is"]


@pytest.mark.usefixtures("no_safety_poll")
async def test_wait_wakes_when_another_agent_sends(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = await pair(team)
    subscribed = spy_subscriptions(monkeypatch, team)
    got: dict[str, Any] = {}

    async def wait() -> None:
        got.update(await bob.call("mail_wait", timeout_s=60))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await subscribed.wait()
            sent = await alice.call("mail_send", to="bob", body="wake up", priority="high")

    assert got["timed_out"] is False
    assert [m["message_id"] for m in got["messages"]] == [sent["message_id"]]
    assert team.view.receipts(sent["message_id"]) == {"bob": "delivered"}


@pytest.mark.usefixtures("no_safety_poll")
async def test_a_broadcast_wakes_every_waiting_recipient(team: Team) -> None:
    alice = await team.agent("alice")
    workers = [await team.agent(f"w{i}", Role.worker, parent="alice") for i in range(4)]
    results: dict[str, list[str]] = {}

    async def wait(worker: Agent) -> None:
        results[worker.name] = bodies(await worker.call("mail_wait", timeout_s=60))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for w in workers:
                tg.start_soon(wait, w)
            # Not knowing whether each waiter has subscribed yet is fine: a send before the
            # subscription is found by the look that follows it.
            await alice.call("mail_send", to="children", body="go")

    assert results == {w.name: ["go"] for w in workers}


async def test_two_servers_of_one_session_never_both_get_a_message(team: Team) -> None:
    alice, bob = await pair(team)
    bob_elsewhere = await team.another_server_for(bob)
    got: list[str] = []
    total = 40

    async def drain(me: Agent) -> None:
        while len(got) < total:
            got.extend(bodies(await me.call("mail_wait", timeout_s=0.2, max_messages=3)))

    async def send_all() -> None:
        for i in range(total):
            await alice.call("mail_send", to="bob", body=str(i))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain, bob)
            tg.start_soon(drain, bob_elsewhere)
            tg.start_soon(send_all)

    assert sorted(got, key=int) == [str(i) for i in range(total)]
    assert team.view.bodies_received_by("bob") and len(team.view.bodies_received_by("bob")) == total


async def test_cancelling_a_wait_leaves_later_mail_unread(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = await pair(team)
    subscribed = spy_subscriptions(monkeypatch, team)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:

            async def wait() -> None:
                await bob.call("mail_wait", timeout_s=60)
                pytest.fail("the wait should have been cancelled")

            tg.start_soon(wait)
            await subscribed.wait()
            tg.cancel_scope.cancel()

    sent = await alice.call("mail_send", to="bob", body="after the cancel")
    assert team.view.receipts(sent["message_id"]) == {"bob": "sent"}
    assert (await bob.call("whoami"))["unread"]["count"] == 1
    assert bodies(await bob.call("mail_inbox")) == ["after the cancel"]


@pytest.mark.parametrize("tool", ["mail_wait", "mail_inbox"])
async def test_a_call_cancelled_in_the_instant_after_its_take_puts_the_mail_back(
    team: Team, monkeypatch: pytest.MonkeyPatch, tool: str
) -> None:
    """The take is shielded, so a cancellation that arrives while it runs lands just after it: the agent
    never sees those messages, so they must not stay `delivered`; the next call returns them."""
    alice, bob = await pair(team)
    first = await alice.call("mail_send", to="bob", body="not lost")
    second = await alice.call("mail_send", to="bob", body="nor this", priority="high")
    real_take = team.store.take_unread

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def take_then_get_cancelled(session_id: str, limit: int, **kw: Any) -> Any:
                taken = await real_take(session_id, limit, **kw)
                tg.cancel_scope.cancel()  # the caller gives up while the take is committing
                return taken

            monkeypatch.setattr(team.store, "take_unread", take_then_get_cancelled)
            mail = team.services.mail
            if tool == "mail_wait":
                tg.start_soon(mail.wait, bob.session, 30, 10)
            else:
                tg.start_soon(mail.inbox, bob.session, 10, True)
    monkeypatch.setattr(team.store, "take_unread", real_take)

    assert team.view.receipts(first["message_id"]) == {"bob": "sent"}
    assert team.view.receipts(second["message_id"]) == {"bob": "sent"}
    with anyio.fail_after(10):
        assert bodies(await bob.call("mail_wait", timeout_s=5)) == ["nor this", "not lost"]
    assert team.view.receipts(first["message_id"]) == {"bob": "delivered"}


@pytest.mark.parametrize("timeout_s", [-1, -0.001, MAX_WAIT_S + 1, 1e9])
async def test_wait_refuses_a_timeout_out_of_range(team: Team, timeout_s: float) -> None:
    alice, bob = await pair(team)
    await alice.call("mail_send", to="bob", body="stays unread")
    before = team.view.snapshot()

    with anyio.fail_after(5):
        text = await bob.error("mail_wait", timeout_s=timeout_s)

    assert "timeout_s" in text and "3600" in text
    assert team.view.snapshot() == before


@pytest.mark.parametrize("max_messages", [0, 501])
async def test_wait_refuses_max_messages_out_of_range(team: Team, max_messages: int) -> None:
    alice, bob = await pair(team)
    await alice.call("mail_send", to="bob", body="stays unread")
    before = team.view.snapshot()

    with anyio.fail_after(5):
        text = await bob.error("mail_wait", timeout_s=1, max_messages=max_messages)

    assert "max_messages" in text
    assert team.view.snapshot() == before


async def test_every_mail_tool_result_carries_unread(team: Team) -> None:
    alice, bob = await pair(team)
    first = await alice.call("mail_send", to="bob", body="a", priority="critical")
    await alice.call("mail_send", to="bob", body="b", priority="low")
    await alice.call("mail_send", to="bob", body="c", priority="low")

    assert (await bob.call("mail_thread", thread_id=first["thread_id"]))["unread"] == {"count": 2, "urgent": False}
    assert (await bob.call("mail_inbox", limit=1))["unread"] == {"count": 1, "urgent": False}
    assert (await bob.call("mail_ack", message_ids=[first["message_id"]]))["unread"]["count"] == 1
    assert (await bob.call("mail_send", to="alice", body="d"))["unread"]["count"] == 1
    assert (await bob.call("mail_wait", timeout_s=0))["unread"]["count"] == 0


@pytest.mark.usefixtures("no_safety_poll")
async def test_wait_wakes_on_a_send_committed_through_another_store_connection(
    team_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two opened stores on one file stand for two processes: only the socket notifier connects them."""
    got: dict[str, Any] = {}
    async with team_factory() as here:
        bob = await here.agent("bob")
        subscribed = spy_subscriptions(monkeypatch, here)

        async def wait() -> None:
            got.update(await bob.call("mail_wait", timeout_s=60))

        async with team_factory() as there:
            alice = await there.agent("alice")
            with anyio.fail_after(5):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(wait)
                    await subscribed.wait()
                    sent = await alice.call("mail_send", to="bob", body="across processes")

    assert [m["message_id"] for m in got["messages"]] == [sent["message_id"]]
