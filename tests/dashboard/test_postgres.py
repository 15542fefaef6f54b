"""The dashboard over a PostgreSQL store: the same live page, woken by LISTEN/NOTIFY."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from dashkit import browser, dashboard, watched_page
from test_postgres_processes import agent, pg_db

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

__all__ = ["pg_db"]  # the fixture, used by name

CALL_S = 20
LIVE_MS = 10_000


async def test_on_postgresql_new_mail_and_its_receipts_reach_the_open_page(pg_db: str, tmp_path: Path) -> None:
    alice = agent(pg_db, tmp_path, name="alice", role="worker")
    bob = agent(pg_db, tmp_path, name="bob", role="worker")
    async with alice, bob:
        with anyio.fail_after(CALL_S):
            await alice.call("whoami")
            await bob.call("whoami")
        async with dashboard(pg_db, cwd=tmp_path) as running, browser() as b, watched_page(b) as w:
            await w.page.goto(running.url)
            await w.page.wait_for_selector("#conn.live", timeout=LIVE_MS)
            assert await w.page.locator("table.sessions tbody th[scope=row]").all_inner_texts() == ["alice", "bob"]
            with anyio.fail_after(CALL_S):
                sent = await alice.call("mail_send", to="bob", body="over LISTEN/NOTIFY")
            message = w.page.locator(f"#msg-{sent['message_id']}")
            await message.wait_for(timeout=LIVE_MS)
            assert "bob: sent" in await message.inner_text()
            # Receipts are not notified on PostgreSQL; the page still shows the ack within its re-read.
            with anyio.fail_after(CALL_S):
                await bob.call("mail_inbox")
                await bob.call("mail_ack", message_ids=[sent["message_id"]])
            await message.locator(".rcpt.r-acked", has_text="bob: acked").wait_for(timeout=LIVE_MS)
