"""Store contract, sessions: the same behaviour on every backend."""

from __future__ import annotations

import anyio
import pytest
from store_builders import session_record
from storekit import Maker, StoreKit

from maestro_mcp.errors import Conflict, NotFound
from maestro_mcp.ids import hash_token
from maestro_mcp.models import Role, SessionStatus
from maestro_mcp.store import Store

pytestmark = pytest.mark.anyio


async def test_a_new_store_is_at_the_latest_schema_version(store: Store) -> None:
    assert await store.schema_version() >= 2


async def test_opening_a_store_twice_keeps_its_schema_and_data(kit: StoreKit, store: Store) -> None:
    alice = await store.create_session(session_record("alice"))

    again = await kit.open()

    assert await again.schema_version() == await store.schema_version()
    assert await again.get_session("alice") == alice


async def test_racing_openers_all_succeed_on_a_fresh_store(kit: StoreKit) -> None:
    stores: list[Store] = []

    async def open_one() -> None:
        stores.append(await kit.open())

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(open_one)

    versions = {await s.schema_version() for s in stores}
    assert len(stores) == 4 and len(versions) == 1


async def test_a_session_is_found_by_id_and_by_name(store: Store) -> None:
    record = session_record("alice", Role.coordinator, workspace="/w", directive="build it")

    await store.create_session(record)

    assert await store.get_session(record.id) == record
    assert await store.get_session("alice") == record
    assert await store.get_session("nobody") is None


async def test_a_taken_name_is_a_conflict_and_stores_nothing(store: Store, make_session: Maker) -> None:
    await make_session("alice")

    with pytest.raises(Conflict, match="alice"):
        await store.create_session(session_record("alice"))

    assert [s.name for s in await store.list_sessions()] == ["alice"]


async def test_an_id_matches_before_a_name(store: Store, make_session: Maker) -> None:
    first = await make_session("first")
    # Another session whose *name* is the first one's id must not shadow that id.
    await store.create_session(session_record(first.id))

    assert await store.get_session(first.id) == first


async def test_list_sessions_filters_by_role_status_parent_and_liveness(store: Store, make_session: Maker) -> None:
    boss = await make_session("boss", Role.coordinator)
    w1 = await make_session("w1", Role.worker, boss)
    w2 = await make_session("w2", Role.worker, boss)
    await store.set_session_status(w2.id, SessionStatus.idle)
    await store.end_session(w1.id, SessionStatus.exited, 0)

    assert [s.name for s in await store.list_sessions()] == ["boss", "w1", "w2"]
    assert [s.name for s in await store.list_sessions(role=Role.worker)] == ["w1", "w2"]
    assert [s.name for s in await store.list_sessions(status=SessionStatus.idle)] == ["w2"]
    assert [s.name for s in await store.list_sessions(parent_id=boss.id)] == ["w1", "w2"]
    assert [s.name for s in await store.list_sessions(live=True)] == ["boss", "w2"]
    assert [s.name for s in await store.list_sessions(live=False)] == ["w1"]


async def test_ending_a_session_is_won_by_exactly_one_of_many_concurrent_callers(
    kit: StoreKit, store: Store, make_session: Maker
) -> None:
    worker = await make_session("worker")
    others = [await kit.open() for _ in range(3)]
    results = []

    async def end(s: Store) -> None:
        results.append(await s.end_session(worker.id, SessionStatus.exited, 3))

    async with anyio.create_task_group() as tg:
        for s in [store, *others, store, *others]:
            tg.start_soon(end, s)

    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].status is SessionStatus.exited and winners[0].exit_code == 3 and not winners[0].live


async def test_an_ended_session_keeps_its_status_until_revived(store: Store, make_session: Maker) -> None:
    worker = await make_session("worker")
    await store.end_session(worker.id, SessionStatus.exited, 1)

    assert await store.set_session_status(worker.id, SessionStatus.working) is None
    revived = await store.revive_session(worker.id, SessionStatus.working, 4242)

    assert revived.live and revived.status is SessionStatus.working and revived.pid == 4242
    assert revived.exit_code is None
    with pytest.raises(NotFound):
        await store.revive_session("s-missing", SessionStatus.working, None)


async def test_touch_records_activity_and_keeps_the_pid_unless_given(store: Store, make_session: Maker) -> None:
    worker = await make_session("worker")

    await store.touch_session(worker.id, 99)
    await store.touch_session(worker.id)

    after = await store.get_session(worker.id)
    assert after is not None and after.pid == 99 and after.last_seen_at >= worker.last_seen_at


async def test_tokens_are_found_by_hash_replaced_and_revoked(store: Store, make_session: Maker) -> None:
    worker = await make_session("worker")

    assert await store.set_token_hash(worker.id, hash_token("one"))
    assert (await store.session_by_token_hash(hash_token("one"))) is not None
    assert await store.set_token_hash(worker.id, hash_token("two"))
    assert await store.session_by_token_hash(hash_token("one")) is None
    assert await store.set_token_hash(worker.id, None)
    assert await store.session_by_token_hash(hash_token("two")) is None
    assert not await store.set_token_hash("s-missing", hash_token("x"))


async def test_a_spawned_session_records_its_process_and_exit_code(store: Store, make_session: Maker) -> None:
    worker = await make_session("worker")

    await store.set_process(worker.id, 1234, 1000, "/logs/worker.log")
    await store.end_session(worker.id, SessionStatus.exited, None)
    await store.set_exit_code(worker.id, 7, SessionStatus.failed)

    after = await store.get_session(worker.id)
    assert after is not None
    assert (after.pid, after.spawner_pid, after.log_path) == (1234, 1000, "/logs/worker.log")
    assert (after.exit_code, after.status) == (7, SessionStatus.failed)


async def test_health_names_the_backend_and_finds_nothing_wrong(kit: StoreKit, store: Store) -> None:
    health = await store.health()

    assert health["backend"].startswith({"sqlite": "sqlite", "postgres": "postgresql"}[kit.backend])
    assert health["integrity"] == "ok"
