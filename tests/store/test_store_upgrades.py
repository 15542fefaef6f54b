"""Stores made by earlier releases open with this one and upgrade, their data intact, on both backends.

Each is built from the schema texts those releases ran (released_schemas.py), up to a
version, with a session and a message in it, the way such a store was left on disk.
"""

from __future__ import annotations

import sqlite3

import anyio
import asyncpg
import pytest
from released_schemas import POSTGRES, SQLITE
from store_builders import new_message, session_record
from storekit import StoreKit, pg_base_url

from maestro_mcp.models import ReceiptStatus
from maestro_mcp.store.postgres.executor import split_url
from maestro_mcp.store.schema import LATEST

pytestmark = pytest.mark.anyio

# The columns of version 1; later versions only add columns that may be NULL.
SESSION_V1 = "id, name, role, agent, parent_id, status, workspace, pid, token_hash, created_at, last_seen_at"
ALICE = ("s-alice", "alice", "coordinator", "script", None, "working", None, None, None, 1.0, 1.0)
MESSAGE = ("m-old", "m-old", None, "s-alice", "", "left from before", 2, "message", None, 1.0)


def build_sqlite(path: str, upto: int) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
        for version, script in SQLITE[:upto]:
            conn.executescript(script)
            conn.execute("INSERT INTO schema_migrations VALUES (?, 1.0)", (version,))
        conn.execute(f"INSERT INTO sessions ({SESSION_V1}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", ALICE)
        conn.execute(
            "INSERT INTO messages (id, thread_id, reply_to, sender_id, subject, body, priority, type, task_id,"
            " created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            MESSAGE,
        )
        conn.execute("INSERT INTO receipts VALUES ('s-alice', 1, 'sent', 2, NULL, NULL)")
        conn.commit()
    finally:
        conn.close()


async def build_postgres(url: str, upto: int) -> None:
    dsn, schema = split_url(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"; SET search_path = "{schema}"')
        await conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        for version, script in POSTGRES[:upto]:
            await conn.execute(script)
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, 1.0)", version)
        await conn.execute(f"INSERT INTO sessions ({SESSION_V1}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)", *ALICE)
        await conn.execute(
            "INSERT INTO messages (id, thread_id, reply_to, sender_id, subject, body, priority, type, task_id,"
            " created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
            *MESSAGE,
        )
        await conn.execute("INSERT INTO receipts VALUES ('s-alice', 1, 'sent', 2, NULL, NULL)")
    finally:
        await conn.close()


@pytest.mark.parametrize("upto", [1, 2, 3, 4])
async def test_a_store_of_an_earlier_release_opens_upgrades_and_keeps_its_data(
    kit: StoreKit, backend: str, upto: int
) -> None:
    if backend == "sqlite":
        await anyio.Path(kit.location).parent.mkdir(parents=True)
        build_sqlite(kit.location, upto)
    else:
        assert kit.location.startswith(pg_base_url().split("?")[0])
        await build_postgres(kit.location, upto)

    store = await kit.open()

    assert await store.schema_version() == LATEST
    alice = await store.get_session("alice")
    assert alice is not None and alice.spawner_pid is None
    [old] = await store.thread("m-old")
    assert old.body == "left from before" and [r.status for r in old.receipts] == [ReceiptStatus.sent]
    bob = await store.create_session(session_record("bob", spawner_pid=42))
    await store.insert_message(new_message(bob, [alice], "after the upgrade"))
    taken, _ = await store.take_unread(alice.id, 10)
    assert [m.body for m in taken] == ["left from before", "after the upgrade"]
    assert (await kit.open()).location == store.location  # and it opens again as it is
