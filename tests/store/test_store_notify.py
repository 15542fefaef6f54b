"""Store contract, wake-ups: a commit rings the subscriptions it concerns, here and in other processes.

A second store object on the same location stands for another process: it shares
nothing with the first but the database (and, for SQLite, the socket directory).
Every wait is bounded; a doorbell that does not ring within the bound fails the test.
"""

from __future__ import annotations

import anyio
import pytest
from store_builders import new_message, session_record
from storekit import Maker, StoreKit

from maestro_mcp.ids import new_id
from maestro_mcp.models import NewTask, TaskStatus, now
from maestro_mcp.store import ALL, Store, mail_topic

pytestmark = pytest.mark.anyio

BOUND_S = 10.0


async def test_a_commit_rings_local_subscriptions_to_its_topics(store: Store, make_session: Maker) -> None:
    alice, bob, carol = await make_session("alice"), await make_session("bob"), await make_session("carol")

    async with store.subscribe(mail_topic(bob.id)) as bobs, store.subscribe(mail_topic(carol.id)) as carols:
        await store.insert_message(new_message(alice, [bob]))
        await store.insert_message(new_message(alice, [carol]))

        with anyio.fail_after(BOUND_S):  # no listener runs: only the local ring can wake these
            assert await bobs.wait(BOUND_S)
            assert await carols.wait(BOUND_S)


async def test_mail_committed_by_another_process_rings_the_recipients_subscription(
    kit: StoreKit, store: Store, make_session: Maker
) -> None:
    alice, bob = await make_session("alice"), await make_session("bob")
    other = await kit.open()

    async with anyio.create_task_group() as tg:
        await store.listen(bob.id, tg)
        async with store.subscribe(mail_topic(bob.id)) as bell:
            await other.insert_message(new_message(alice, [bob]))

            assert await bell.wait(BOUND_S)
        tg.cancel_scope.cancel()


async def test_a_wildcard_subscription_hears_every_topic_from_another_process(kit: StoreKit, store: Store) -> None:
    other = await kit.open()

    async with anyio.create_task_group() as tg:
        await store.listen(ALL, tg)
        async with store.subscribe(ALL) as bell:
            await other.create_session(session_record("newcomer"))

            assert await bell.wait(BOUND_S)
        tg.cancel_scope.cancel()


async def test_task_changes_in_another_process_ring_the_tasks_topic(
    kit: StoreKit, store: Store, make_session: Maker
) -> None:
    boss = await make_session("boss")
    other = await kit.open()

    async with anyio.create_task_group() as tg:
        await store.listen(ALL, tg)
        async with store.subscribe("tasks") as bell:
            await other.create_tasks(
                [
                    NewTask(
                        id=new_id("t"),
                        key=None,
                        title="something",
                        description="",
                        acceptance="",
                        priority=0,
                        wave=0,
                        parent_id=None,
                        depends_on=[],
                        files=[],
                        assignee_id=None,
                        created_by=boss.id,
                        status=TaskStatus.pending,
                        created_at=now(),
                    )
                ]
            )

            assert await bell.wait(BOUND_S)
        tg.cancel_scope.cancel()


async def test_a_waiter_in_one_process_wakes_for_each_of_several_sends_from_another(
    kit: StoreKit, store: Store, make_session: Maker
) -> None:
    alice, bob = await make_session("alice"), await make_session("bob")
    other = await kit.open()

    async with anyio.create_task_group() as tg:
        await store.listen(bob.id, tg)
        async with store.subscribe(mail_topic(bob.id)) as bell:
            for i in range(5):
                await other.insert_message(new_message(alice, [bob], f"m{i}"))
                assert await bell.wait(BOUND_S)
                batch, _ = await store.take_unread(bob.id, 10)
                assert [m.body for m in batch] == [f"m{i}"]
        tg.cancel_scope.cancel()


async def test_wake_rings_other_processes_without_writing(kit: StoreKit, store: Store, make_session: Maker) -> None:
    bob = await make_session("bob")
    other = await kit.open()
    before = await store.dump()

    async with anyio.create_task_group() as tg:
        await store.listen(bob.id, tg)
        async with store.subscribe(mail_topic(bob.id)) as bell:
            await other.wake([mail_topic(bob.id)])

            assert await bell.wait(BOUND_S)
        tg.cancel_scope.cancel()
    assert await store.dump() == before
