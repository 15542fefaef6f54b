"""Store contract, sessions: the same behaviour on every backend."""

from __future__ import annotations

import anyio
import pytest
from store_builders import session_record
from storekit import Maker, StoreKit

from maestro_mcp.errors import Conflict, NotFound
from maestro_mcp.ids import hash_token, new_id
from maestro_mcp.models import ReportKind, ReportRecord, Role, SessionStatus, now
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
    await store.end_session(w1.id, SessionStatus.exited, 0, max_attempts=3)

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
        results.append(await s.end_session(worker.id, SessionStatus.exited, 3, max_attempts=3))

    async with anyio.create_task_group() as tg:
        for s in [store, *others, store, *others]:
            tg.start_soon(end, s)

    winners = [r.session for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].status is SessionStatus.exited and winners[0].exit_code == 3 and not winners[0].live


async def test_taking_over_an_ended_session_is_won_by_exactly_one_of_many_concurrent_takers(
    kit: StoreKit, store: Store, make_session: Maker
) -> None:
    lead = await make_session("lead", Role.coordinator)
    await store.end_session(lead.id, SessionStatus.exited, 0, max_attempts=3)
    others = [await kit.open() for _ in range(3)]
    won, lost = [], []

    async def take(s: Store, pid: int) -> None:
        try:
            won.append(await s.revive_session(lead.id, SessionStatus.working, pid, ended_only=True))
        except Conflict as exc:
            lost.append(str(exc))

    async with anyio.create_task_group() as tg:
        for pid, s in enumerate([store, *others], start=100):
            tg.start_soon(take, s, pid)

    assert len(won) == 1 and won[0].live
    assert len(lost) == 3 and all("lead is live again: another process took it over" in m for m in lost)
    assert (await store.get_session(lead.id)).pid == won[0].pid  # type: ignore[union-attr]


async def test_an_ended_session_keeps_its_status_until_revived(store: Store, make_session: Maker) -> None:
    worker = await make_session("worker")
    await store.end_session(worker.id, SessionStatus.exited, 1, max_attempts=3)

    assert await store.set_session_status(worker.id, SessionStatus.working) is None
    revived = await store.revive_session(worker.id, SessionStatus.working, 4242)

    assert revived.live and revived.status is SessionStatus.working and revived.pid == 4242
    assert revived.exit_code is None
    with pytest.raises(NotFound):
        await store.revive_session("s-missing", SessionStatus.working, None)


async def test_a_stop_asked_of_a_live_session_is_not_overwritten_by_what_it_does_on_its_way_out(
    store: Store, make_session: Maker
) -> None:
    worker = await make_session("worker")
    await store.set_session_status(worker.id, SessionStatus.stopped)

    after_claim = await store.set_session_status(worker.id, SessionStatus.working)
    report = ReportRecord(
        id=new_id("r"), session_id=worker.id, task_id=None, kind=ReportKind.complete, summary="done",
        artifacts=[], percent=None, created_at=now(),
    )  # fmt: skip
    await store.add_report(report, SessionStatus.idle)

    assert after_claim is not None and after_claim.status is SessionStatus.stopped
    assert (await store.get_session(worker.id)).status is SessionStatus.stopped  # type: ignore[union-attr]
    ending = await store.end_session(worker.id, SessionStatus.stopped, -15, max_attempts=3)
    assert ending is not None and ending.session.status is SessionStatus.stopped


async def test_a_respawn_names_its_spawner_and_a_resume_keeps_it(store: Store, make_session: Maker) -> None:
    worker = await make_session("worker")
    await store.end_session(worker.id, SessionStatus.failed, 1, max_attempts=3)

    respawned = await store.revive_session(worker.id, SessionStatus.spawning, None, spawner=(777, "here"))
    assert (respawned.spawner_pid, respawned.host, respawned.pid) == (777, "here", None)
    assert await store.liveness_suspects("here", expired=0) == [respawned], "judged by its spawner until it beats"
    resumed = await store.revive_session(worker.id, SessionStatus.working, 4242)

    assert (resumed.spawner_pid, resumed.host, resumed.pid) == (777, None, 4242), "its own server beats from now"
    assert await store.liveness_suspects("here", expired=0) == []


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
    await store.end_session(worker.id, SessionStatus.exited, None, max_attempts=3)
    await store.set_exit_code(worker.id, 7, SessionStatus.failed)

    after = await store.get_session(worker.id)
    assert after is not None
    assert (after.pid, after.spawner_pid, after.log_path) == (1234, 1000, "/logs/worker.log")
    assert (after.exit_code, after.status) == (7, SessionStatus.failed)


async def test_health_names_the_backend_and_finds_nothing_wrong(kit: StoreKit, store: Store) -> None:
    health = await store.health()

    assert health["backend"].startswith({"sqlite": "sqlite", "postgres": "postgresql"}[kit.backend])
    assert health["integrity"] == "ok"


async def test_heartbeats_mark_the_host_and_suspects_are_this_hosts_and_the_expired(store: Store) -> None:
    here = await store.create_session(session_record("here", pid=1))
    there = await store.create_session(session_record("there", pid=2))
    quiet = await store.create_session(session_record("quiet", pid=3))  # never beat: not judged at all
    assert await store.heartbeat(here.id, "this-host")
    assert await store.heartbeat(there.id, "other-host")
    beat = await store.get_session(there.id)
    assert beat is not None and beat.host == "other-host" and beat.heartbeat_at is not None

    fresh = {s.name for s in await store.liveness_suspects("this-host", expired=beat.heartbeat_at - 1)}
    stale = {s.name for s in await store.liveness_suspects("this-host", expired=beat.heartbeat_at + 1)}

    assert fresh == {"here"} and stale == {"here", "there"} and quiet.name not in stale
    await store.end_session(here.id, SessionStatus.exited, None, max_attempts=3)
    assert not await store.heartbeat(here.id, "this-host"), "an ended session's heartbeat changes nothing"
    assert "here" not in {s.name for s in await store.liveness_suspects("this-host", expired=0)}


async def test_a_revived_session_starts_without_the_heartbeat_of_its_previous_process(store: Store) -> None:
    """Else a sweeper elsewhere would take the old, stale heartbeat for the death of the new process."""
    record = await store.create_session(session_record("again", pid=1))
    assert await store.heartbeat(record.id, "old-host")
    await store.end_session(record.id, SessionStatus.exited, None, max_attempts=3)

    revived = await store.revive_session(record.id, SessionStatus.working, 2)

    assert revived.host is None and revived.heartbeat_at is None
    assert "again" not in {s.name for s in await store.liveness_suspects("old-host", expired=10**10)}
