"""Real `maestro serve` processes sharing one PostgreSQL store (MAESTRO_DB=postgresql://...).

They share nothing but the database: wake-ups travel by LISTEN/NOTIFY. Each test gets
a schema of its own (``?schema=``), dropped afterwards. An unreachable server fails
these tests with a message saying how to start it, unless MAESTRO_SKIP_PG=1.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from projectkit import user_env
from test_http import create_token, http_server, remote_agent

from maestro_mcp.client import AgentClient, serve_params
from maestro_mcp.store import create_store

pytestmark = pytest.mark.anyio

START_S = 30
CALL_S = 15


def base_url() -> str:
    return os.environ.get("MAESTRO_TEST_PG") or "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
async def pg_db() -> AsyncIterator[str]:
    """A fresh schema on the test server, as a MAESTRO_DB URL."""
    if os.environ.get("MAESTRO_SKIP_PG") == "1":
        pytest.skip("MAESTRO_SKIP_PG=1: PostgreSQL tests left out on purpose")
    url = base_url()
    try:
        with anyio.fail_after(5):
            admin = await asyncpg.connect(url)
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL at {url} is unreachable ({type(exc).__name__}: {exc}). Start it with"
            " `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, point MAESTRO_TEST_PG"
            " at another server, or set MAESTRO_SKIP_PG=1 to leave the PostgreSQL tests out.",
            pytrace=False,
        )
    schema = f"p_{secrets.token_hex(6)}"
    try:
        yield f"{url}{'&' if '?' in url else '?'}schema={schema}"
    finally:
        with anyio.CancelScope(shield=True), anyio.fail_after(30):
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await admin.close()


def agent(db: str, cwd: Path, **params: Any) -> AgentClient:
    return AgentClient(serve_params(db=db, cwd=str(cwd), **params), read_timeout_s=START_S)


async def test_a_waiter_in_one_server_process_wakes_for_mail_sent_through_another(pg_db: str, tmp_path: Path) -> None:
    async with agent(pg_db, tmp_path, name="alice") as alice:
        with anyio.fail_after(START_S):
            await alice.call("whoami")
        async with agent(pg_db, tmp_path, name="bob", role="worker", parent="alice") as bob:
            with anyio.fail_after(START_S):
                await bob.call("whoami")
            for round_ in range(3):
                got: dict[str, Any] = {}

                async def bob_waits(into: dict[str, Any]) -> None:
                    into.update(await bob.call("mail_wait", timeout_s=60))

                with anyio.fail_after(CALL_S * 2):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(bob_waits, got)
                        sent = await alice.call("mail_send", to="bob", body=f"round {round_}")
                assert not got["timed_out"]
                assert [m["message_id"] for m in got["messages"]] == [sent["message_id"]]

            with anyio.fail_after(CALL_S):
                await bob.call("mail_send", to="coordinator", body="done", reply_to=sent["message_id"])
                answer = await alice.call("mail_wait", timeout_s=30)
                thread = await alice.call("mail_thread", thread_id=sent["thread_id"])
            assert [m["body"] for m in answer["messages"]] == ["done"]
            assert thread["messages"][0]["receipts"][0]["status"] == "delivered"

        # bob's server has stopped: alice hears it as an event, across processes, from the store alone.
        with anyio.fail_after(CALL_S * 2):
            events = await alice.call("mail_wait", timeout_s=CALL_S * 2)
        assert any(m["type"] == "event" and "bob" in m["subject"] for m in events["messages"])


async def test_mail_round_trip_between_http_and_stdio_sessions_on_postgresql(pg_db: str, tmp_path: Path) -> None:
    async with (
        http_server(pg_db, cwd=tmp_path) as server,
        agent(pg_db, tmp_path, name="local") as local,
    ):
        with anyio.fail_after(START_S):
            await local.call("whoami")
        token = await create_token(pg_db, "remote", "--role", "worker", "--parent", "local", cwd=tmp_path)
        async with remote_agent(server.url, token) as remote:
            got: dict[str, Any] = {}

            async def remote_waits() -> None:
                got.update(await remote.call("mail_wait", timeout_s=60))

            with anyio.fail_after(CALL_S * 4):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(remote_waits)
                    sent = await local.call("mail_send", to="remote", body="over postgres")
                await remote.call("mail_send", to="coordinator", body="heard you", reply_to=sent["message_id"])
                answer = await local.call("mail_wait", timeout_s=30)
        assert [m["body"] for m in got["messages"]] == ["over postgres"]
        assert [m["body"] for m in answer["messages"]] == ["heard you"]


def rows(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """Tables as sorted row texts: the same data whatever order each backend lists it in."""
    return {t: sorted(repr(sorted(r.items())) for r in rs) for t, rs in tables.items()}


async def test_migrate_copies_a_sqlite_project_into_an_empty_postgresql_store(pg_db: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    sqlite_db = str(project / ".maestro" / "maestro.db")
    project.mkdir()
    async with agent(sqlite_db, project, name="boss") as boss:
        with anyio.fail_after(START_S):
            created = await boss.call(
                "task_create",
                tasks=[{"key": "a", "title": "a", "files": ["src/"]}, {"key": "b", "title": "b", "depends_on": ["a"]}],
            )
        async with agent(sqlite_db, project, name="helper", role="worker", parent="boss") as helper:
            with anyio.fail_after(CALL_S):
                await helper.call("task_ready", claim=True)
                await helper.call(
                    "report_progress", kind="progress", summary="started", task_id=created["tasks"][0]["id"]
                )
                await helper.call("mail_send", to="coordinator", body="on it")
        with anyio.fail_after(CALL_S):
            await boss.call("mail_inbox")

    env = user_env()
    command = [sys.executable, "-m", "maestro_mcp", "migrate", "--to", pg_db]
    with anyio.fail_after(START_S):
        done = await anyio.run_process(command, env=env, cwd=project, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert "copied" in done.stdout.decode()

    source, target = create_store(sqlite_db), create_store(pg_db)
    await source.open()
    await target.open()
    try:
        before = await source.dump()
        assert rows(await target.dump()) == rows(before)
        assert {t: len(r) for t, r in before.items() if r}.keys() >= {"sessions", "messages", "receipts", "tasks"}

        # Into a store that holds data: refused, and nothing changes on either side.
        with anyio.fail_after(START_S):
            again = await anyio.run_process(command, env=env, cwd=project, check=False)
        assert again.returncode != 0 and "already holds data" in again.stderr.decode()
        assert "PASSWORD" not in again.stderr.decode()
        assert rows(await target.dump()) == rows(before) == rows(await source.dump())
    finally:
        await source.close()
        await target.close()
