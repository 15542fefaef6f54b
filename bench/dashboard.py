"""The dashboard, measured with real processes and Debian's chromium.

    python bench/dashboard.py [--loads 50] [--sends 200] [--agents 8] [--pages 5] [--seconds 8]

(a) First load on the demo's store (a real `maestro demo` run): the server's time for GET / and the
    bytes of the page and its assets, against GET of a static file from the same server (the HTTP
    round trip itself) as the baseline; and in the browser, from navigation to the live event stream.
(b) From `mail_send` (a real `maestro serve` over stdio) to the message being on the open page,
    p50/p99 over `--sends` sends, against the mail_send round trip itself as the baseline.
(c) The dashboard server's CPU while `--agents` agents (each its own `maestro serve`) exchange mail,
    with no page open (the baseline), one page, and `--pages` pages.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "dashboard"))
sys.path.insert(0, str(HERE.parent / "tests"))

from _common import Table  # noqa: E402
from dashkit import Running, browser, dashboard, opened, run_demo  # noqa: E402

from maestro_mcp.client import AgentClient, serve_params  # noqa: E402

SWAPS = """() => {
  window.__seen = {};
  window.__swaps = 0;
  document.addEventListener("maestro:swap", () => {
    window.__swaps += 1;
    const now = Date.now();
    for (const el of document.querySelectorAll("[data-message-id]")) {
      const id = el.dataset.messageId;
      if (!(id in window.__seen)) window.__seen[id] = now;
    }
  });
}"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def first_load(loads: int) -> None:
    workspace, store = run_demo()
    try:
        async with dashboard(store) as running, httpx2.AsyncClient(timeout=30) as http:
            page_s, static_s = [], []
            size = 0
            for _ in range(loads):
                t = time.perf_counter()
                page = await http.get(running.url)
                page_s.append(time.perf_counter() - t)
                size = len(page.content)
                t = time.perf_counter()
                await http.get(running.url + "static/icon.svg")
                static_s.append(time.perf_counter() - t)
            assets = 0
            for asset in ("static/dashboard.css", "static/dashboard.js", "static/icon.svg"):
                assets += len((await http.get(running.url + asset)).content)
            ready, parsed = [], []
            async with browser() as b:
                for _ in range(min(loads, 20)):
                    ctx = await b.new_context()
                    pg = await ctx.new_page()
                    t = time.perf_counter()
                    await pg.goto(running.url)
                    await pg.wait_for_selector("#conn.live", timeout=10_000)
                    ready.append(time.perf_counter() - t)
                    dcl = await pg.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
                    parsed.append(dcl / 1000)
                    await ctx.close()
        table = Table(f"(a) first load of the demo's store ({loads} loads)")
        base = table.add("GET /static/icon.svg (baseline)", static_s)
        got = table.add("GET / (the whole board)", page_s)
        table.add("browser: navigation to DOMContentLoaded", parsed)
        table.add("browser: navigation to live events", ready)
        print(table.render())
        print(f"    page ratio to baseline: p50 {got['p50'] / base['p50']:.1f}x")
        print(f"    bytes: page {size:,} (HTML), assets {assets:,} (CSS, JS, icon), total {size + assets:,}")
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


@contextlib.asynccontextmanager
async def fresh_store() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="maestro-bench-") as tmp:
        (Path(tmp) / "project").mkdir()
        db = str(Path(tmp) / "project" / ".maestro" / "maestro.db")
        async with opened(db):
            pass
        yield db


async def send_to_page(sends: int) -> None:
    async with fresh_store() as db, dashboard(db) as running, browser() as b:
        alice = AgentClient(serve_params(db=db, name="alice", role="worker"))
        bob = AgentClient(serve_params(db=db, name="bob", role="worker"))
        async with alice, bob:
            await alice.call("whoami")
            await bob.call("whoami")
            pg = await (await b.new_context()).new_page()
            await pg.goto(running.url)
            await pg.wait_for_selector("#conn.live", timeout=10_000)
            await pg.evaluate(SWAPS)
            to_page, round_trip = [], []
            for n in range(sends):
                t0 = time.time()
                sent = await alice.call("mail_send", to="bob", body=f"message {n}")
                round_trip.append(time.time() - t0)
                mid = sent["message_id"]
                await pg.wait_for_function("id => id in window.__seen", arg=mid, timeout=10_000)
                seen_ms = await pg.evaluate("id => window.__seen[id]", mid)
                to_page.append(seen_ms / 1000 - t0)
        table = Table(f"(b) mail_send -> on the open page ({sends} sends)")
        base = table.add("mail_send round trip (baseline)", round_trip)
        got = table.add("mail_send -> message on the page", to_page)
        print(table.render())
        print(
            f"    p50 {got['p50'] * 1000:.1f} ms, p99 {got['p99'] * 1000:.1f} ms;"
            f" ratio to the send itself: p50 {got['p50'] / base['p50']:.1f}x"
        )


async def chatter(db: str, agents: int, seconds: float, pages: int, running: Running) -> tuple[float, int, int]:
    """CPU seconds the dashboard used while the agents exchanged mail; mails sent; swaps seen by pages."""
    names = [f"agent-{i}" for i in range(agents)]
    clients = [AgentClient(serve_params(db=db, name=n, role="worker")) for n in names]
    sent = 0
    async with contextlib.AsyncExitStack() as stack, browser() as b:
        for c in clients:
            await stack.enter_async_context(c)
            await c.call("whoami")
        opened_pages = []
        for _ in range(pages):
            pg = await (await b.new_context()).new_page()
            await pg.goto(running.url)
            await pg.wait_for_selector("#conn.live", timeout=10_000)
            await pg.evaluate(SWAPS)
            opened_pages.append(pg)
        rng = random.Random(7)
        start_cpu = cpu_seconds(running.process.pid)
        deadline = time.monotonic() + seconds

        async def talk(i: int) -> None:
            nonlocal sent
            me = clients[i]
            while time.monotonic() < deadline:
                peer = names[rng.randrange(agents)]
                await me.call("mail_send", to=peer, body=f"from {names[i]}")
                sent += 1
                await me.call("mail_inbox", limit=20)

        async with anyio.create_task_group() as tg:
            for i in range(agents):
                tg.start_soon(talk, i)
        used = cpu_seconds(running.process.pid) - start_cpu
        swaps = 0
        for pg in opened_pages:
            swaps += await pg.evaluate("window.__swaps")
    return used, sent, swaps


async def cpu(agents: int, pages: int, seconds: float) -> None:
    print(f"(c) dashboard server CPU while {agents} agents exchange mail for {seconds:.0f} s each")
    rows = []
    for open_pages in (0, 1, pages):
        async with fresh_store() as db, dashboard(db) as running:
            used, sent, swaps = await chatter(db, agents, seconds, open_pages, running)
        rows.append((open_pages, used, sent, swaps))
    base = rows[0][1] / seconds
    for open_pages, used, sent, swaps in rows:
        share = used / seconds
        ratio = f"{share / base:.1f}x" if base > 0 else "-"
        per_mail = used / sent * 1000 if sent else 0.0
        print(
            f"    {open_pages} page(s) open: {share * 100:5.1f}% of one core ({ratio} the server with no page),"
            f" {per_mail:.2f} ms CPU per mail; {sent} mails ({sent / seconds:.0f}/s),"
            f" {swaps} section updates received by the pages"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--loads", type=int, default=50)
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    await first_load(args.loads)
    print()
    await send_to_page(args.sends)
    print()
    await cpu(args.agents, args.pages, args.seconds)


if __name__ == "__main__":
    anyio.run(main)
