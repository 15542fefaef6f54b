"""Store contract, mail and receipts: the same behaviour on every backend."""

from __future__ import annotations

import anyio
import pytest
from store_builders import new_message
from storekit import Maker, StoreKit

from maestro_mcp.errors import Forbidden, NotFound
from maestro_mcp.models import Message, Priority, ReceiptStatus, Role
from maestro_mcp.store import Store

pytestmark = pytest.mark.anyio


async def receipts_of(store: Store, thread_id: str, message_id: str) -> dict[str, ReceiptStatus]:
    for message in await store.thread(thread_id):
        if message.message_id == message_id:
            return {r.name: r.status for r in message.receipts}
    raise AssertionError(f"{message_id} is not in thread {thread_id}")


async def test_a_message_gets_one_sent_receipt_per_recipient(store: Store, make_session: Maker) -> None:
    alice, bob, carol = await make_session("alice"), await make_session("bob"), await make_session("carol")
    message = new_message(alice, [bob, carol], "hi both")

    await store.insert_message(message)

    assert await receipts_of(store, message.thread_id, message.id) == {
        "bob": ReceiptStatus.sent,
        "carol": ReceiptStatus.sent,
    }
    stored = await store.get_message(message.id)
    assert stored is not None and stored.sender == "alice" and stored.body == "hi both"
    assert await store.thread_exists(message.thread_id)
    assert not await store.thread_exists("m-nothing")
    assert await store.get_message("m-nothing") is None


async def test_unread_counts_and_flags_urgent_mail(store: Store, make_session: Maker) -> None:
    alice, bob = await make_session("alice"), await make_session("bob")
    await store.insert_message(new_message(alice, [bob], priority=Priority.low))

    assert (await store.unread(bob.id)).model_dump() == {"count": 1, "urgent": False}
    await store.insert_message(new_message(alice, [bob], priority=Priority.high))
    assert (await store.unread(bob.id)).model_dump() == {"count": 2, "urgent": True}
    assert (await store.unread(alice.id)).count == 0


async def test_take_unread_returns_critical_first_then_oldest_and_marks_delivered(
    store: Store, make_session: Maker
) -> None:
    alice, bob = await make_session("alice"), await make_session("bob")
    sent = {}
    for body, priority in [
        ("low", Priority.low),
        ("normal-1", Priority.normal),
        ("critical", Priority.critical),
        ("normal-2", Priority.normal),
        ("high", Priority.high),
    ]:
        message = new_message(alice, [bob], body, priority=priority)
        sent[body] = message
        await store.insert_message(message)

    first, remaining = await store.take_unread(bob.id, 3)
    rest, remaining_after = await store.take_unread(bob.id, 10)

    assert [m.body for m in first] == ["critical", "high", "normal-1"]
    assert remaining == 2
    assert [m.body for m in rest] == ["normal-2", "low"]
    assert remaining_after == 0
    assert await store.take_unread(bob.id, 10) == ([], 0)
    for message in sent.values():
        assert await receipts_of(store, message.thread_id, message.id) == {"bob": ReceiptStatus.delivered}


async def test_each_unread_message_is_taken_by_exactly_one_of_many_concurrent_takers(
    kit: StoreKit, store: Store, make_session: Maker
) -> None:
    alice, bob = await make_session("alice"), await make_session("bob")
    ids = []
    for i in range(40):
        message = new_message(alice, [bob], f"m{i}")
        ids.append(message.id)
        await store.insert_message(message)
    takers = [store, *[await kit.open() for _ in range(3)]]
    taken: list[Message] = []

    async def take(s: Store) -> None:
        while True:
            batch, _ = await s.take_unread(bob.id, 3)
            if not batch:
                return
            taken.extend(batch)

    async with anyio.create_task_group() as tg:
        for s in takers * 2:
            tg.start_soon(take, s)

    assert sorted(m.message_id for m in taken) == sorted(ids)


async def test_put_back_returns_to_sent_only_what_that_take_still_holds(store: Store, make_session: Maker) -> None:
    alice, bob = await make_session("alice"), await make_session("bob")
    first, second = new_message(alice, [bob], "one"), new_message(alice, [bob], "two")
    await store.insert_message(first)
    await store.insert_message(second)
    taken, _ = await store.take_unread(bob.id, 10, taken_at=1000.0)
    await store.ack(bob.id, [first.id])  # shown and acknowledged meanwhile: it stays acknowledged

    assert await store.put_back(bob.id, [m.message_id for m in taken], taken_at=999.0) == 0  # another take's
    assert await store.put_back(bob.id, [m.message_id for m in taken], taken_at=1000.0) == 1

    assert await receipts_of(store, first.thread_id, first.id) == {"bob": ReceiptStatus.acked}
    assert await receipts_of(store, second.thread_id, second.id) == {"bob": ReceiptStatus.sent}
    assert [m.body for m in (await store.take_unread(bob.id, 10))[0]] == ["two"]


async def test_recent_read_lists_delivered_mail_newest_first(store: Store, make_session: Maker) -> None:
    alice, bob = await make_session("alice"), await make_session("bob")
    for body in ("one", "two", "three"):
        await store.insert_message(new_message(alice, [bob], body))
    await store.take_unread(bob.id, 2)

    assert [m.body for m in await store.recent_read(bob.id, 10)] == ["two", "one"]
    assert [m.body for m in await store.recent_read(bob.id, 1)] == ["two"]


async def test_a_thread_lists_its_messages_in_order_with_every_receipt(store: Store, make_session: Maker) -> None:
    alice, bob, carol = await make_session("alice"), await make_session("bob"), await make_session("carol")
    first = new_message(alice, [bob, carol], "question")
    await store.insert_message(first)
    reply = new_message(bob, [alice], "answer", thread_id=first.id, reply_to=first.id)
    await store.insert_message(reply)
    await store.insert_message(new_message(alice, [bob], "elsewhere"))

    thread = await store.thread(first.id)

    assert [m.body for m in thread] == ["question", "answer"]
    assert thread[1].reply_to == first.id
    assert [r.name for r in thread[0].receipts] == ["bob", "carol"]
    assert all(r.delivered_at is None and r.acked_at is None for r in thread[0].receipts)
    assert await store.thread("m-nothing") == []


async def test_showing_a_thread_delivers_only_the_viewers_receipts_in_it(store: Store, make_session: Maker) -> None:
    alice, bob, carol = await make_session("alice"), await make_session("bob"), await make_session("carol")
    first = new_message(alice, [bob, carol], "question")
    other = new_message(alice, [bob], "other thread")
    await store.insert_message(first)
    await store.insert_message(other)

    assert await store.mark_thread_delivered(first.id, bob.id) == 1
    assert await store.mark_thread_delivered(first.id, bob.id) == 0

    assert await receipts_of(store, first.id, first.id) == {
        "bob": ReceiptStatus.delivered,
        "carol": ReceiptStatus.sent,
    }
    assert await receipts_of(store, other.id, other.id) == {"bob": ReceiptStatus.sent}


async def test_ack_marks_receipts_acked_and_delivered_and_is_repeatable(store: Store, make_session: Maker) -> None:
    alice, bob = await make_session("alice"), await make_session("bob")
    message = new_message(alice, [bob])
    await store.insert_message(message)

    assert await store.ack(bob.id, [message.id, message.id]) == [message.id]
    assert await store.ack(bob.id, [message.id]) == [message.id]

    [shown] = await store.thread(message.id)
    [receipt] = shown.receipts
    assert receipt.status is ReceiptStatus.acked
    assert receipt.acked_at is not None and receipt.delivered_at is not None
    assert (await store.unread(bob.id)).count == 0


async def test_ack_of_an_unknown_id_changes_nothing(store: Store, make_session: Maker) -> None:
    alice, bob = await make_session("alice"), await make_session("bob")
    message = new_message(alice, [bob])
    await store.insert_message(message)

    with pytest.raises(NotFound, match="m-unknown"):
        await store.ack(bob.id, [message.id, "m-unknown"])

    assert await receipts_of(store, message.id, message.id) == {"bob": ReceiptStatus.sent}


async def test_ack_of_someone_elses_mail_is_forbidden_and_changes_nothing(store: Store, make_session: Maker) -> None:
    alice, bob, carol = await make_session("alice"), await make_session("bob"), await make_session("carol")
    to_bob = new_message(alice, [bob])
    to_carol = new_message(alice, [carol])
    await store.insert_message(to_bob)
    await store.insert_message(to_carol)

    with pytest.raises(Forbidden, match=to_carol.id):
        await store.ack(bob.id, [to_bob.id, to_carol.id])

    assert await receipts_of(store, to_bob.id, to_bob.id) == {"bob": ReceiptStatus.sent}
    assert await receipts_of(store, to_carol.id, to_carol.id) == {"carol": ReceiptStatus.sent}


async def test_no_active_directives_in_a_new_store(store: Store, make_session: Maker) -> None:
    alice = await make_session("alice", Role.coordinator)

    assert await store.active_directives(alice.id) == []
