"""Store contract, shared state: versions, compare-and-set under concurrency, expiry without ABA, wake-ups."""

from __future__ import annotations

import anyio
import pytest
from storekit import Maker, StoreKit

from maestro_mcp.store import Store
from maestro_mcp.store.notify import state_topic

pytestmark = pytest.mark.anyio


async def test_a_value_is_stored_versioned_and_read_back_by_any_store(
    store: Store, kit: StoreKit, make_session: Maker
) -> None:
    alice = await make_session("alice")
    first = await store.put_state("api.port", "8080", set_by=alice.id, ttl_s=None, if_version=None)
    second = await store.put_state("api.port", "8081", set_by=None, ttl_s=None, if_version=None)

    other = await kit.open()
    got = await other.get_state("api.port")
    assert first.won and second.won
    assert first.entry is not None and first.entry.version == 1 and first.entry.set_by == alice.id
    assert got is not None and (got.value, got.version, got.set_by) == ("8081", 2, None)
    assert await other.get_state("api.host") is None
    assert [e.key for e in await other.list_state("api.")] == ["api.port"]


async def test_compare_and_set_wins_only_against_the_current_version(store: Store) -> None:
    created = await store.put_state("k", '"a"', set_by=None, ttl_s=None, if_version=0)
    again = await store.put_state("k", '"b"', set_by=None, ttl_s=None, if_version=0)
    stale = await store.put_state("k", '"c"', set_by=None, ttl_s=None, if_version=7)
    swapped = await store.put_state("k", '"d"', set_by=None, ttl_s=None, if_version=1)
    missing = await store.put_state("nothing", '"x"', set_by=None, ttl_s=None, if_version=3)

    assert created.won and not again.won and not stale.won and swapped.won and not missing.won
    assert again.entry is not None and again.entry.version == 1 and again.entry.value == '"a"'
    assert swapped.entry is not None and swapped.entry.version == 2
    assert missing.entry is None
    got = await store.get_state("k")
    assert got is not None and got.value == '"d"'


async def test_racing_compare_and_sets_from_many_stores_have_exactly_one_winner_per_version(
    kit: StoreKit,
) -> None:
    stores = [await kit.open() for _ in range(8)]
    await stores[0].put_state("counter", "0", set_by=None, ttl_s=None, if_version=0)
    wins: list[int] = []

    async def racer(store: Store, n: int) -> None:
        for _ in range(5):
            seen = await store.get_state("counter")
            assert seen is not None
            outcome = await store.put_state(
                "counter", str(int(seen.value) + 1), set_by=None, ttl_s=None, if_version=seen.version
            )
            if outcome.won:
                assert outcome.entry is not None
                wins.append(outcome.entry.version)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for n, store in enumerate(stores):
                tg.start_soon(racer, store, n)

    final = await stores[0].get_state("counter")
    assert final is not None
    assert sorted(wins) == list(range(2, final.version + 1))  # every version won once, none twice
    assert int(final.value) == len(wins)  # no increment lost


async def test_an_expired_key_reads_as_unset_and_comes_back_with_a_higher_version(store: Store) -> None:
    await store.put_state("lease", '"w1"', set_by=None, ttl_s=None, if_version=None)
    # A lifetime that ended before it began: expired at once, without waiting for a clock.
    await store.put_state("lease", '"w1"', set_by=None, ttl_s=-1.0, if_version=1)
    assert await store.get_state("lease") is None

    stale = await store.put_state("lease", '"w2"', set_by=None, ttl_s=None, if_version=2)
    taken = await store.put_state("lease", '"w3"', set_by=None, ttl_s=None, if_version=0)

    assert not stale.won and stale.entry is None
    assert taken.won and taken.entry is not None and taken.entry.version == 3
    assert await store.list_state() == [taken.entry]


async def test_unsetting_a_key_keeps_its_version_for_the_next_value(store: Store) -> None:
    await store.put_state("k", "1", set_by=None, ttl_s=None, if_version=None)
    assert await store.expire_state("k") is True
    assert await store.expire_state("k") is False
    assert await store.get_state("k") is None
    again = await store.put_state("k", "2", set_by=None, ttl_s=None, if_version=0)
    assert again.entry is not None and again.entry.version == 2


async def test_a_set_rings_the_keys_topic_in_another_store(store: Store, kit: StoreKit) -> None:
    listener = await kit.open()
    async with anyio.create_task_group() as tg:
        await listener.listen("s-reader", tg)
        async with listener.subscribe(state_topic("api.port")) as bell:
            await store.put_state("api.port", "1", set_by=None, ttl_s=None, if_version=None)
            with anyio.fail_after(10):
                assert await bell.wait(10)
        tg.cancel_scope.cancel()
