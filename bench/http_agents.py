"""HTTP benchmark: 200 agents on one `maestro serve --http`, on one PostgreSQL with its default max_connections.

    python bench/http_agents.py                  # 200 agents on PostgreSQL
    python bench/http_agents.py --agents 50      # fewer

A stdio server holds one PostgreSQL connection (its primary one, which also LISTENs), so
about 80 agents with a server each fill a default `max_connections` of 100 once the
humans' commands and some headroom are counted. Past that, agents connect over HTTP to
one `maestro serve --http` whose transactions share a pool (MAESTRO_HTTP_PG_POOL_SIZE,
default 20). This run starts one such server on a fresh schema and 200 MCP clients, each
its own session with its own bearer token; all of them connect and call whoami at once,
then each sends a message to a random peer at a random moment of a 10 s window (20 messages
a second in all) and waits until it has received every message sent to it.

It reports: every message delivered exactly once (clients and store), whoami and mail_send
round trips over HTTP, the wake latency, and the most PostgreSQL connections the store's
processes held at once (sampled from pg_stat_activity) against max_connections.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx2
from _common import Table, drop_location, location, pg_base, pg_value, verdict
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from maestro_mcp.config import Settings, redact_url
from maestro_mcp.models import Role
from maestro_mcp.service import Services
from maestro_mcp.store import create_store

START_S = 60.0
CALL_S = 120.0


async def register(db: str, n: int) -> list[tuple[str, str]]:
    """A coordinator and n - 1 workers under it: (name, token) each."""
    store = create_store(db, Settings.load({}))
    await store.open()
    try:
        svc = Services.create(store, Settings.load({}))
        lead = await svc.sessions.register(name="a000", role=Role.coordinator, agent="script")
        out = [("a000", lead.token)]
        for i in range(1, n):
            reg = await svc.sessions.register(name=f"a{i:03d}", role=Role.worker, agent="script", parent="a000")
            out.append((reg.session.name, reg.token))
        return out
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def http_server(db: str, cwd: Path) -> AsyncIterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")} | {"MAESTRO_DB": db}
    command = [sys.executable, "-m", "maestro_mcp", "serve", "--http", "--port", "0"]
    async with await anyio.open_process(command, env=env, cwd=cwd) as process:
        assert process.stderr is not None
        buffer = b""
        with anyio.fail_after(START_S):
            while b"serving MCP at " not in buffer:
                buffer += await process.stderr.receive()
        line = next(x for x in buffer.decode().splitlines() if "serving MCP at " in x)
        try:
            yield line.rsplit(" ", 1)[-1]
        finally:
            process.terminate()
            with anyio.fail_after(START_S):
                await process.wait()


@contextlib.asynccontextmanager
async def remote(url: str, token: str) -> AsyncIterator[Client]:
    headers = {"authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(CALL_S)) as http,
        Client(streamable_http_client(url, http_client=http), read_timeout_seconds=CALL_S) as client,
    ):
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise RuntimeError(f"{tool}: {' '.join(getattr(b, 'text', '') for b in result.content)}")
    return dict(result.structured_content or {})


async def connections_sampler(stop: anyio.Event, peak: list[int]) -> None:
    """The most connections maestro's processes hold at once, sampled every 0.2 s until `stop`."""
    while not stop.is_set():
        n = await pg_value("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name LIKE 'maestro %'")
        peak[0] = max(peak[0], int(n))
        with anyio.move_on_after(0.2):
            await stop.wait()


async def run(agents: int, seed: int, window: float) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="maestro-bench-http-"))
    db = location("postgresql", tmp, "http")
    rng = random.Random(seed)
    max_connections = int(await pg_value("SHOW max_connections"))
    print(
        f"maestro HTTP benchmark  ({agents} agents, {os.cpu_count()} CPUs, PostgreSQL at {redact_url(pg_base())},"
        f" max_connections {max_connections})\n",
        flush=True,
    )
    try:
        sessions = await register(db, agents)
        names = [n for n, _ in sessions]
        target = {n: rng.choice([m for m in names if m != n]) for n in names}
        offset = {n: rng.uniform(0, window) for n in names}
        expected = Counter(target.values())
        received: dict[str, list[tuple[str, float]]] = {n: [] for n in names}
        sent_at: dict[str, float] = {}
        whoami: list[float] = []
        send: list[float] = []
        errors: list[str] = []
        ready = 0
        all_ready, go, all_done = anyio.Event(), anyio.Event(), anyio.Event()
        done = 0
        peak = [0]

        async def agent(name: str, token: str, url: str) -> None:
            nonlocal ready, done
            try:
                async with remote(url, token) as client:
                    t0 = time.perf_counter()
                    me = await call(client, "whoami")
                    whoami.append(time.perf_counter() - t0)
                    assert me["name"] == name
                    ready += 1
                    if ready == agents:
                        all_ready.set()
                    await go.wait()

                    async def send_on_schedule() -> None:
                        await anyio.sleep(offset[name])  # the offered load's schedule, not synchronisation
                        body = f"from {name}"
                        t0 = time.perf_counter()
                        await call(client, "mail_send", to=target[name], body=body)
                        sent_at[body] = time.perf_counter()
                        send.append(sent_at[body] - t0)

                    async def wait_for_mine() -> None:
                        while len(received[name]) < expected[name]:
                            waited = await call(client, "mail_wait", timeout_s=60)
                            now = time.perf_counter()
                            received[name] += [(m["body"], now) for m in waited["messages"]]

                    async with anyio.create_task_group() as both:
                        both.start_soon(wait_for_mine)
                        both.start_soon(send_on_schedule)
                    done += 1
                    if done == agents:
                        all_done.set()
                    await all_done.wait()  # stay connected: the server must keep serving everyone
            except Exception as exc:
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                all_ready.set()
                all_done.set()

        async with http_server(db, tmp) as url, anyio.create_task_group() as tg:
            stop = anyio.Event()
            tg.start_soon(connections_sampler, stop, peak)
            started = time.perf_counter()
            with anyio.fail_after(600):
                async with anyio.create_task_group() as agents_tg:
                    for name, token in sessions:
                        agents_tg.start_soon(agent, name, token, url)
                    await all_ready.wait()
                    print(f"  {ready} agents connected and answered whoami in {time.perf_counter() - started:.1f} s")
                    go.set()
                    await all_done.wait()
            stop.set()

        store = create_store(db, Settings.load({}))
        await store.open()
        try:
            tables = await store.dump()
        finally:
            await store.close()
    finally:
        await drop_location(db)

    bodies = [b for got in received.values() for b, _ in got]
    wake = [t - sent_at[b] for got in received.values() for b, t in got]
    messages = [m for m in tables["messages"] if m["type"] == "message"]
    seqs = {m["seq"] for m in messages}
    receipts = [r for r in tables["receipts"] if r["message_seq"] in seqs]
    once = len(bodies) == agents == len(set(bodies)) and len(messages) == agents == len(receipts)
    once = once and all(r["status"] == "delivered" for r in receipts)
    table = Table(f"{agents} agents over streamable HTTP, one server, one PostgreSQL")
    table.add("whoami (first call; all agents connecting at once)", whoami)
    table.add(f"mail_send (spread over {window:g} s)", send)
    w = table.add("wake: mail_send returned -> mail_wait returned", wake)
    print(table.render())
    print(f"  delivered exactly once: {'yes' if once else 'NO'} ({len(set(bodies))}/{agents}); errors: {len(errors)}")
    for error in errors[:5]:
        print(f"    {error}")
    print(
        f"  PostgreSQL connections held by maestro at most: {peak[0]} of max_connections {max_connections}"
        f" ({verdict(peak[0] / max_connections, 0.5)} of it)"
    )
    print(f"  wake p99 {w['p99'] * 1000:.1f} ms")
    return 0 if once and not errors and peak[0] < max_connections else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--window", type=float, default=10.0, help="seconds over which the agents send")
    args = parser.parse_args()
    sys.exit(anyio.run(run, args.agents, args.seed, args.window))
