"""The dashboard in a real browser (Debian's chromium through Playwright) against real processes.

Each test fails on any console error or uncaught exception of the page (`watched_page`). Waits are
bounded by Playwright's timeouts and `anyio.fail_after`; nothing sleeps to synchronise.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import httpx2
import pytest
from dashkit import browser, dashboard, opened, watched_page
from harness import StoreView

from maestro_mcp.client import AgentClient, serve_params
from maestro_mcp.models import ActivityBatch, ActivityKind, ApprovalStatus, NewActivity, Role, Usage, now
from maestro_mcp.policy import Decision, ToolCall, Verdict

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CALL_S = 20
LIVE_MS = 10_000
"""How long a page may take to open its event stream (it is usually a few milliseconds)."""
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
UNLABELLED = """() => [...document.querySelectorAll("button, input:not([type=hidden]), select, textarea")]
    .filter(el => el.tagName === "BUTTON" ? !(el.textContent.trim() || el.getAttribute("aria-label"))
                                          : el.labels.length === 0)
    .map(el => el.outerHTML.slice(0, 80))"""
ARRIVAL_S = 1.0
"""The issue's promise: mail an agent sends is on the open page within a second."""


async def test_the_demo_store_shows_every_session_and_all_8_tasks(demo_store: str, tmp_path: Path) -> None:
    view = StoreView(demo_store)
    names = [n for (n,) in view._rows("SELECT name FROM sessions WHERE role != 'operator' ORDER BY created_at")]
    task_ids = [t for (t,) in view._rows("SELECT id FROM tasks")]
    assert len(task_ids) == 8
    async with dashboard(demo_store) as running, browser() as b, watched_page(b) as w:
        await w.page.goto(running.url)
        await w.page.wait_for_selector("#conn.live", timeout=LIVE_MS)
        rows = await w.page.locator("table.sessions tbody th[scope=row]").all_inner_texts()
        assert rows == names or sorted(rows) == sorted(names)
        for task_id in task_ids:
            assert await w.page.locator(f"#task-{task_id}").count() == 1, f"task {task_id} is not listed"
        assert await w.page.locator("svg.dag g.node").count() == 8
        assert await w.page.locator("svg.dag path.edge").count() > 0, "the plan is drawn without its dependencies"
        shot = tmp_path / "dashboard.png"
        await w.page.screenshot(path=str(shot), full_page=True)
        unlabelled = await w.page.evaluate(UNLABELLED)
        assert unlabelled == [], f"controls without an accessible name: {unlabelled}"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # At phone width nothing but the wide tables and the plan (which scroll in their own boxes) is wider
    # than the screen.
    async with dashboard(demo_store) as running, browser() as b, watched_page(b, **PHONE) as w:
        await w.page.goto(running.url)
        await w.page.wait_for_selector("#conn.live", timeout=LIVE_MS)
        assert await w.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        await w.page.get_by_role("button", name="Send directive").scroll_into_view_if_needed()
        assert await w.page.get_by_label("Directive", exact=True).is_visible()


async def test_a_mail_an_agent_sends_appears_on_the_open_page_within_a_second_without_reload(db: str) -> None:
    async with opened(db):
        pass  # the store exists, as after `maestro init`
    bob = AgentClient(serve_params(db=db, name="bob", role="worker"))
    alice = AgentClient(serve_params(db=db, name="alice", role="worker"))
    async with dashboard(db) as running, browser() as b, watched_page(b) as w, bob, alice:
        with anyio.fail_after(CALL_S):
            await bob.call("whoami")
            await alice.call("whoami")
        await w.page.goto(running.url)
        await w.page.wait_for_selector("#conn.live", timeout=LIVE_MS)
        await w.page.evaluate("window.__sameDocument = true")
        started = time.perf_counter()
        with anyio.fail_after(CALL_S):
            sent = await alice.call("mail_send", to="bob", subject="lunch?", body="the usual place at noon")
        await w.page.wait_for_selector(f"#msg-{sent['message_id']}", timeout=LIVE_MS)
        arrived = time.perf_counter() - started
        assert await w.page.evaluate("window.__sameDocument") is True, "the page was reloaded"
        text = await w.page.locator(f"#msg-{sent['message_id']}").inner_text()
        assert "the usual place at noon" in text and "bob: sent" in text
        async with httpx2.AsyncClient(timeout=CALL_S) as http:
            metrics = (await http.get(running.url + "metrics")).text
        assert 'maestro_wake_latency_seconds_count{waiter="dashboard"} 1.0' in metrics
    assert arrived < ARRIVAL_S, f"the mail took {arrived:.3f} s (mail_send included) to reach the page"


async def test_a_script_in_a_mail_body_is_shown_as_text_and_never_runs(db: str) -> None:
    payload = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"><b>bold?</b>'
    async with opened(db):
        pass
    mallory = AgentClient(serve_params(db=db, name="mallory", role="worker"))
    async with dashboard(db) as running, browser() as b, watched_page(b) as w, mallory:
        with anyio.fail_after(CALL_S):
            await mallory.call("whoami")
        await w.page.goto(running.url)
        await w.page.wait_for_selector("#conn.live", timeout=LIVE_MS)
        with anyio.fail_after(CALL_S):
            sent = await mallory.call("mail_send", to="mallory", subject="<i>hi</i>", body=payload)
        body = w.page.locator(f"#msg-{sent['message_id']} pre.body")
        await body.wait_for(timeout=LIVE_MS)
        assert await body.inner_text() == payload
        assert await w.page.locator(f"#msg-{sent['message_id']} .subject").inner_text() == "<i>hi</i>"
        assert await w.page.locator(f"#msg-{sent['message_id']} script, #msg-{sent['message_id']} img").count() == 0
        assert await w.page.evaluate("typeof window.__pwned") == "undefined"
        # A fresh load renders the same message on the server: escaped there too.
        await w.page.reload()
        assert await w.page.locator(f"#msg-{sent['message_id']} pre.body").inner_text() == payload
        assert await w.page.evaluate("typeof window.__pwned") == "undefined"


async def test_clicking_approve_unblocks_the_waiting_request(db: str) -> None:
    async with opened(db) as svc:
        lead = (await svc.sessions.register(name="lead", role=Role.coordinator, agent="script")).session
        worker = (await svc.sessions.register(name="w1", role=Role.worker, agent="script", parent="lead")).session
        call = ToolCall("run", "Bash", "rm -rf build/")
        asked = Verdict(Decision.ask, "Bash is not in the allow list")
        verdicts: list[Verdict] = []
        answered = anyio.Event()

        async def ask() -> None:
            verdicts.append(await svc.approvals.ask(worker, call, asked, timeout_s=60))
            answered.set()

        async with dashboard(db) as running, browser() as b, watched_page(b) as w, anyio.create_task_group() as tg:
            await w.page.goto(running.url)
            await w.page.wait_for_selector("#conn.live", timeout=LIVE_MS)
            tg.start_soon(ask)
            card = w.page.locator("article.approval", has_text="rm -rf build/")
            await card.wait_for(timeout=LIVE_MS)
            await card.get_by_label("Reason").fill("fine, it is a scratch build")
            await card.get_by_role("button", name="Approve").click()
            with anyio.fail_after(CALL_S):
                await answered.wait()
            await w.page.locator("#flash.ok").wait_for(timeout=LIVE_MS)
            await w.page.locator("article.approval").wait_for(state="detached", timeout=LIVE_MS)
        assert verdicts[0].decision is Decision.allow
        assert "approved by operator: fine, it is a scratch build" in verdicts[0].reason
        (record,) = await svc.store.list_approvals(session_id=worker.id)
        operator = await svc.store.get_session("operator")
        assert record.status is ApprovalStatus.allowed
        assert operator is not None and record.decided_by == operator.id != lead.id


async def test_a_worker_page_shows_its_activity_and_cost_and_follows_it_live(db: str) -> None:
    async with opened(db) as svc:
        await svc.sessions.register(name="lead", role=Role.coordinator, agent="script")
        worker = (await svc.sessions.register(name="w1", role=Role.worker, agent="claude", parent="lead")).session
        first = ActivityBatch(
            session_id=worker.id,
            relay="r",
            batch=1,
            events=[NewActivity(at=now(), kind=ActivityKind.start, summary="conversation c-1")],
            usage=Usage(input_tokens=1200, output_tokens=300, turns=1, cost_usd=0.05),
        )
        await svc.store.record_activity(first)
        async with dashboard(db) as running, browser() as b, watched_page(b) as w:
            await w.page.goto(f"{running.url}workers/{worker.id}")
            await w.page.wait_for_selector("#conn.live", timeout=LIVE_MS)
            section = w.page.locator("[data-section=w-activity]")
            assert "$0.05" in await section.inner_text()
            assert "conversation c-1" in await section.inner_text()
            # A relay records the worker's next steps: the open page follows without a reload.
            step = ActivityBatch(
                session_id=worker.id,
                relay="r",
                batch=2,
                events=[NewActivity(at=now(), kind=ActivityKind.tool_call, tool="Bash", summary="pytest -q <tests>")],
                usage=Usage(input_tokens=800, output_tokens=100, turns=1, cost_usd=0.07),
                doing="Bash: pytest -q",
                active_at=now(),
            )
            await svc.store.record_activity(step)
            await section.get_by_text("pytest -q <tests>").wait_for(timeout=LIVE_MS)
            text = await section.inner_text()
            assert "$0.12" in text and "Doing: Bash: pytest -q" in text and "2,000 in" in text
            await w.page.goto(running.url)
            row = w.page.locator(f"#session-{worker.id}")
            assert "Bash: pytest -q" in await row.inner_text() and "$0.12" in await row.inner_text()


async def test_steering_from_the_page_reaches_the_agent_and_clear_removes_it(db: str) -> None:
    async with opened(db):
        pass
    bob = AgentClient(serve_params(db=db, name="bob", role="worker"))
    async with dashboard(db) as running, browser() as b, watched_page(b) as w, bob:
        with anyio.fail_after(CALL_S):
            await bob.call("whoami")
        await w.page.goto(running.url)
        await w.page.wait_for_selector("#conn.live", timeout=LIVE_MS)
        await w.page.locator("#steer-to option", has_text="bob").wait_for(state="attached", timeout=LIVE_MS)
        await w.page.get_by_label("Directive", exact=True).fill("write tests first")
        await w.page.get_by_label("Target").select_option(label="bob (worker)")
        await w.page.get_by_label("Priority directive").check()
        await w.page.get_by_role("button", name="Send directive").click()
        await w.page.locator("#flash.ok", has_text="sent to bob").wait_for(timeout=LIVE_MS)
        await w.page.locator(".directives li", has_text="write tests first").wait_for(timeout=LIVE_MS)
        with anyio.fail_after(CALL_S):
            me = await bob.call("whoami")
        assert [d["text"] for d in me["directives"]] == ["write tests first"]
        assert me["directives"][0]["priority"] is True

        await w.page.get_by_role("button", name="Clear all steering").click()
        await w.page.locator(".directives").wait_for(state="detached", timeout=LIVE_MS)
        with anyio.fail_after(CALL_S):
            assert (await bob.call("whoami"))["directives"] == []
