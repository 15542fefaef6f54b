"""PostgreSQL only: faults the other backend cannot have (lost connections, an unreachable server),
and what only a URL can say (schemas, redacted passwords)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from store_builders import new_message, task
from storekit import Maker, StoreKit, drop_schema, open_kit, pg_base_url, with_params

from maestro_mcp.errors import StoreError
from maestro_mcp.models import ReceiptStatus, TaskStatus
from maestro_mcp.store import ALL, SQLStore, Store, create_store, mail_topic
from maestro_mcp.store.activity import ACTIVITY, activity_topic
from maestro_mcp.store.notify import RECEIPTS
from maestro_mcp.store.postgres.executor import PostgresExecutor, split_url
from maestro_mcp.store.postgres.transport import MAX_PAYLOAD, listened, payloads, routed
from maestro_mcp.store.sql import Statement
from maestro_mcp.store.steps import Step

pytestmark = pytest.mark.anyio

BOUND_S = 10.0


def pg(store: Store) -> PostgresExecutor:
    """The PostgreSQL executor under a store: its connections, listener and fault hook."""
    assert isinstance(store, SQLStore) and isinstance(store.executor, PostgresExecutor)
    return store.executor


@pytest.fixture
async def kit(pg_url: str, tmp_path: Path) -> AsyncIterator[StoreKit]:
    """Overrides the suite's two-backend kit: these tests are about PostgreSQL alone."""
    async with open_kit("postgres", tmp_path, pg_url) as k:
        yield k


@pytest.fixture
async def admin(kit: StoreKit) -> AsyncIterator[Any]:
    """A connection of the test's own, outside every store, for terminating backends."""
    conn = await asyncpg.connect(pg_base_url())
    try:
        yield conn
    finally:
        await conn.close()


async def terminate(admin: Any, conn: Any) -> None:
    """Kill `conn`'s server process and wait until the client side has seen it die."""
    gone = anyio.Event()
    conn.add_termination_listener(lambda _c: gone.set())
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", conn.get_server_pid())
    with anyio.fail_after(BOUND_S):
        await gone.wait()


def once(fn: Callable[[Any], Awaitable[None]], phase: str) -> Callable[[str, Any], Awaitable[None]]:
    """A fault hook that runs `fn` on the connection the first time a write reaches `phase`."""
    fired = False

    async def hook(at: str, conn: Any) -> None:
        nonlocal fired
        if at == phase and not fired:
            fired = True
            await fn(conn)

    return hook


async def test_the_listener_reconnects_after_its_backend_is_terminated_and_waiters_still_wake(
    kit: StoreKit, store: Store, admin: Any, make_session: Maker
) -> None:
    alice, bob = await make_session("alice"), await make_session("bob")
    other = await kit.open()

    async with anyio.create_task_group() as tg:
        await store.listen(bob.id, tg)
        listener = pg(store).listener
        assert listener is not None and listener.backend_pid is not None
        first_pid, generation = listener.backend_pid, listener.generation
        async with store.subscribe(mail_topic(bob.id)) as bell:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first_pid)
            # Sent while the listener may still be away: its NOTIFY can be lost, the waiter must not be.
            await other.insert_message(new_message(alice, [bob], "during the gap"))
            assert await bell.wait(BOUND_S)

            assert await listener.wait_connected(generation + 1, BOUND_S)
            assert listener.backend_pid not in (None, first_pid)
            await other.insert_message(new_message(alice, [bob], "after the gap"))
            assert await bell.wait(BOUND_S)
        tg.cancel_scope.cancel()
    taken, _ = await store.take_unread(bob.id, 10)
    assert [m.body for m in taken] == ["during the gap", "after the gap"]


async def test_a_connection_lost_before_commit_is_retried_and_stores_the_message_once(
    store: Store, admin: Any, make_session: Maker
) -> None:
    alice, bob, carol = await make_session("alice"), await make_session("bob"), await make_session("carol")
    pg(store).fault_hook = once(lambda conn: terminate(admin, conn), "before_commit")
    message = new_message(alice, [bob, carol], "survives")

    await store.insert_message(message)

    pg(store).fault_hook = None
    assert await admin.fetchval(f"SELECT COUNT(*) FROM {pg(store).schema}.messages WHERE id = $1", message.id) == 1
    assert await admin.fetchval(f"SELECT COUNT(*) FROM {pg(store).schema}.receipts") == 2
    [shown] = await store.thread(message.id)
    assert {r.name: r.status for r in shown.receipts} == {"bob": ReceiptStatus.sent, "carol": ReceiptStatus.sent}


async def test_a_connection_lost_during_commit_duplicates_nothing(
    store: Store, admin: Any, make_session: Maker
) -> None:
    alice, bob = await make_session("alice"), await make_session("bob")

    async def lose_the_answer(conn: Any) -> None:
        await terminate(admin, conn)
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    # The COMMIT went through but its answer was lost: the retry finds the message and adds nothing.
    pg(store).fault_hook = once(lose_the_answer, "after_commit")
    message = new_message(alice, [bob], "exactly once")
    await store.insert_message(message)
    assert await admin.fetchval(f"SELECT COUNT(*) FROM {pg(store).schema}.messages") == 1
    assert await admin.fetchval(f"SELECT COUNT(*) FROM {pg(store).schema}.receipts") == 1

    # Taking mail cannot be repeated blindly: it says the outcome is unknown, and the mail is not lost.
    pg(store).fault_hook = once(lose_the_answer, "after_commit")
    with pytest.raises(StoreError, match="may or may not"):
        await store.take_unread(bob.id, 10)
    pg(store).fault_hook = None
    assert [m.body for m in await store.recent_read(bob.id, 10)] == ["exactly once"]


async def test_a_pool_connection_terminated_between_calls_is_replaced_transparently(
    store: Store, admin: Any, make_session: Maker
) -> None:
    alice, bob = await make_session("alice"), await make_session("bob")
    schema = pg(store).schema
    pids = [
        r["pid"]
        for r in await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", f"maestro {pg(store).origin}"
        )
    ]
    assert pids
    for pid in pids:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)

    await store.insert_message(new_message(alice, [bob], "still works"))

    assert [m.body for m in (await store.take_unread(bob.id, 5))[0]] == ["still works"]
    assert schema == pg(store).schema


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://maestro:s3cret-pw@127.0.0.1:1/nowhere", "postgresql://maestro:***@127.0.0.1:1/nowhere"),
        (
            "postgresql://maestro@127.0.0.1:1/nowhere?password=s3cret-pw",
            "postgresql://maestro@127.0.0.1:1/nowhere?password=***",
        ),
    ],
)
async def test_an_unreachable_server_fails_after_bounded_retries_naming_the_url_without_its_password(
    url: str, shown: str
) -> None:
    store = SQLStore(PostgresExecutor(url, open_timeout_s=0.5))
    started = time.monotonic()

    with pytest.raises(StoreError) as info:
        await store.open()

    text = str(info.value)
    assert shown in text and "s3cret-pw" not in text
    assert time.monotonic() - started < 15
    assert store.location == shown


async def test_a_wrong_database_name_fails_at_once_with_a_clear_message(pg_url: str) -> None:
    store = SQLStore(PostgresExecutor(pg_url.rsplit("/", 1)[0] + "/no_such_database_here", open_timeout_s=30))
    started = time.monotonic()

    with pytest.raises(StoreError, match="no_such_database_here"):
        await store.open()

    assert time.monotonic() - started < 10


async def test_a_search_path_given_through_libpq_options_is_honoured(pg_url: str, admin: Any) -> None:
    schema = "t_opts_" + str(time.monotonic_ns())[-8:]
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"
    store = create_store(url)
    try:
        await store.open()
        assert pg(store).schema == schema
        assert await admin.fetchval(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'sessions'",
            schema,
        )
    finally:
        await store.close()
        await drop_schema(pg_base_url(), schema)


async def test_the_schema_parameter_is_validated_and_kept_out_of_the_connection_string() -> None:
    dsn, schema = split_url("postgresql://u:p@h:5432/db?schema=team_a&sslmode=disable")
    assert schema == "team_a" and "schema" not in dsn and "sslmode=disable" in dsn

    with pytest.raises(StoreError, match="plain identifier"):
        split_url("postgresql://u:p@h/db?schema=bad;drop")


async def test_stores_in_different_schemas_share_a_database_without_sharing_state(pg_url: str, store: Store) -> None:
    other_url = with_params(pg_url, schema=f"{pg(store).schema}_b")
    other = create_store(other_url)
    try:
        await other.open()
        assert pg(other).channel != pg(store).channel
        assert await other.list_sessions() == []
    finally:
        await other.close()
        await drop_schema(pg_base_url(), f"{pg(store).schema}_b")


def test_long_topic_lists_are_split_over_several_notifications() -> None:
    topics = [mail_topic(f"s-{i:010d}") for i in range(2000)]

    parts = list(payloads("origin", topics))

    assert len(parts) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD for p in parts)
    assert [t for p in parts for t in p.split("\n")[1:]] == topics
    assert all(p.startswith("origin\n") for p in parts)


async def test_server_settings_in_the_url_reach_every_connection(kit: StoreKit) -> None:
    store = create_store(with_params(kit.location, synchronous_commit="off"))
    try:
        await store.open()

        def show() -> Step[str]:
            return str((yield Statement("SHOW synchronous_commit").value()))

        assert await pg(store).read(show) == "off"
    finally:
        await store.close()


def test_mail_notifications_go_to_their_recipient_and_the_firehose_and_store_wide_ones_to_everyone() -> None:
    """Receipts are not notified: only humans' live views care, and they look every second."""
    bob, carol = listened("s", "s-bob"), listened("s", "s-carol")
    everyone = listened("s", ALL)

    sent = routed("s", [mail_topic("s-bob"), "tasks", RECEIPTS])

    heard = {name: {t for ch in chans for t in sent.get(ch, [])} for name, chans in (("bob", bob), ("carol", carol))}
    assert heard == {"bob": {mail_topic("s-bob"), "tasks"}, "carol": {"tasks"}}
    assert {t for ch in everyone for t in sent.get(ch, [])} == {mail_topic("s-bob"), "tasks"}


def test_a_worker_s_activity_is_notified_to_watchers_only() -> None:
    """`maestro logs -f` hears a relay's batch at once; no agent's server is sent it."""
    sent = routed("s", [activity_topic("s-w"), ACTIVITY])
    assert {t for ch in listened("s", ALL) for t in sent.get(ch, [])} == {activity_topic("s-w")}
    assert not {t for ch in listened("s", "s-w") for t in sent.get(ch, [])}


async def connections_of(admin: Any, store: Store) -> int:
    found = await admin.fetchval(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1", f"maestro {pg(store).origin}"
    )
    return int(found)


async def test_a_server_holds_one_connection_listening_and_working_and_a_pool_only_under_load(
    kit: StoreKit, store: Store, admin: Any, make_session: Maker
) -> None:
    alice, bob = await make_session("alice"), await make_session("bob")

    async with anyio.create_task_group() as tg:
        await store.listen(bob.id, tg)
        async with store.subscribe(mail_topic(bob.id)) as bell:
            async with anyio.create_task_group() as senders:  # calls overlapping in one process take turns
                for i in range(10):
                    senders.start_soon(store.insert_message, new_message(alice, [bob], f"m{i}"))
            assert await bell.wait(BOUND_S)
            assert await connections_of(admin, store) == 1

            served = create_store(kit.location, pool_size=4)  # as `maestro serve --http` opens it
            await served.open()
            try:
                async with anyio.create_task_group() as readers:
                    for _ in range(20):
                        readers.start_soon(served.thread_exists, "m-none")
                assert 1 <= await connections_of(admin, served) <= 4
            finally:
                await served.close()
        tg.cancel_scope.cancel()
    assert len((await store.take_unread(bob.id, 50))[0]) == 10


async def test_two_dependencies_done_at_once_in_two_transactions_ready_their_dependent(
    kit: StoreKit, store: Store, admin: Any, make_session: Maker
) -> None:
    """A statement sees only what is committed: each transaction read the other dependency as still
    running, and the dependent stayed pending for good (a `maestro run` on PostgreSQL hung on it)."""
    w1, w2 = await make_session("w1"), await make_session("w2")
    a, b = task("a"), task("b")
    c = task("c", depends_on=[a, b])
    await store.create_tasks([a, b, c])
    for t, worker in ((a, w1), (b, w2)):
        await store.update_task(t.id, expect=TaskStatus.ready, status=TaskStatus.in_progress, assignee_id=worker.id)
    other = await kit.open()  # another process's store
    at_commit, go, b_done = anyio.Event(), anyio.Event(), anyio.Event()

    async def hold(at: str, conn: Any) -> None:
        if at == "before_commit" and not at_commit.is_set():
            at_commit.set()
            await go.wait()

    async def finish_b() -> None:
        await other.update_task(b.id, expect=TaskStatus.in_progress, status=TaskStatus.done, result="b")
        b_done.set()

    pg(store).fault_hook = hold
    waiting_on_a_lock = "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'"
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: store.update_task(a.id, expect=TaskStatus.in_progress, status=TaskStatus.done, result="a")
        )
        with anyio.fail_after(BOUND_S):
            await at_commit.wait()  # a is done in its transaction, not committed
            tg.start_soon(finish_b)
            # b's transaction either ends (each blind to the other) or waits for a's lock on c. Only the
            # server knows it waits: look until one or the other shows.
            while not await admin.fetchval(waiting_on_a_lock, f"maestro {pg(other).origin}"):
                with anyio.move_on_after(0.005):
                    await b_done.wait()
                if b_done.is_set():
                    break
            go.set()
    pg(store).fault_hook = None

    assert {t.title: t.status for t in await store.list_tasks()} == {
        "a": TaskStatus.done,
        "b": TaskStatus.done,
        "c": TaskStatus.ready,
    }
