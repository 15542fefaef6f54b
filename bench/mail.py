"""Mail benchmark: maestro's tool round trips and wake-ups as ratios against a bare MCP server.

    python bench/mail.py                    # everything, on SQLite and on PostgreSQL side by side
    python bench/mail.py --backend sqlite   # one backend only
    python bench/mail.py --load-procs 0     # skip the load and throughput runs

One run starts, on a fresh store of each backend (a temporary SQLite file; a new PostgreSQL schema
at MAESTRO_BENCH_PG or MAESTRO_TEST_PG, default the local `test` database, dropped afterwards):
  * a bare MCP SDK stdio server with a no-op tool (the baseline),
  * two `maestro serve` processes, alice (coordinator) and bob (her worker),
and measures, interleaved so that machine noise hits every series alike:
  (a) whoami round trip / no-op round trip          target <= 1.25x
  (b) mail_send round trip / no-op round trip       target <= 2x
  (c) wake latency: from mail_send returning in alice's client to bob's blocked mail_wait
      returning in bob's client, over >= 500 messages; target p50 <= 3x no-op, p99 <= 10 ms
then (d) a load run at a fixed offered load: 50 `maestro serve` processes sending 100 messages a
second in total (each on its own schedule, to random peers) for 60 s while waiting on their own
mail; every message must be delivered exactly once (checked in the store and in what the clients
received), and the wake latency p99 must stay <= 20 ms;
and (e) throughput: the highest sustained mail_send rate of 8 servers sending as fast as they can
(each also draining its own mail), as a ratio to raw single-row SQLite commits a second (one
INSERT per BEGIN IMMEDIATE ... COMMIT, WAL, synchronous=NORMAL) measured on this machine in the
same run: the physical limit of one SQLite file.

The wake latency can be negative: bob's server is woken by the commit, before alice's server
has even answered her. The send-start column measures from the moment alice called mail_send.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from _common import (
    Table,
    backends,
    drop_location,
    location,
    noop_params,
    pg_base,
    raw_sqlite_commits,
    side_by_side,
    verdict,
)
from mcp import Client

from maestro_mcp.client import AgentClient, serve_params
from maestro_mcp.config import redact_url
from maestro_mcp.store import create_store

CALL_TIMEOUT_S = 120.0


async def round_trips(alice: AgentClient, bob: AgentClient, noop: Client, n: int) -> dict[str, list[float]]:
    """n interleaved round trips of each kind; the first 10% of calls are warm-up and not kept."""
    series: dict[str, list[float]] = {"noop": [], "whoami": [], "mail_send": []}
    warmup = max(20, n // 10)
    for i in range(warmup + n):
        t0 = time.perf_counter()
        await noop.call_tool("noop", {})
        t1 = time.perf_counter()
        await alice.call("whoami")
        t2 = time.perf_counter()
        await alice.call("mail_send", to="bob", body=f"rt {i}")
        t3 = time.perf_counter()
        if i >= warmup:
            series["noop"].append(t1 - t0)
            series["whoami"].append(t2 - t1)
            series["mail_send"].append(t3 - t2)
        if i % 50 == 49:
            await bob.call("mail_inbox", limit=500)  # keep bob's inbox small, as a working agent would
    await bob.call("mail_inbox", limit=500)
    return series


async def wake_latency(alice: AgentClient, bob: AgentClient, n: int) -> tuple[list[float], list[float]]:
    """(from send return, from send start) to bob's mail_wait returning, per message."""
    from_return: list[float] = []
    from_start: list[float] = []
    got = anyio.Event()
    received: dict[str, float] = {}

    async def bob_loop() -> None:
        nonlocal got
        while True:
            waited = await bob.call("mail_wait", timeout_s=30)
            now = time.perf_counter()
            for message in waited["messages"]:
                received[message["body"]] = now
            got.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(bob_loop)
        for i in range(n + 20):
            # Give bob's next mail_wait time to reach its server and block: the point is to time a wake-up.
            await anyio.sleep(0.004)
            got = anyio.Event()
            body = f"wake {i}"
            t0 = time.perf_counter()
            await alice.call("mail_send", to="bob", body=body)
            t1 = time.perf_counter()
            with anyio.fail_after(30):
                while body not in received:
                    await got.wait()
                    got = anyio.Event()
            if i >= 20:
                from_return.append(received[body] - t1)
                from_start.append(received[body] - t0)
        tg.cancel_scope.cancel()
    return from_return, from_start


async def load(db: str, procs: int, rate: float, seconds: float, seed: int) -> dict[str, Any]:
    """procs servers sending `rate` messages a second in total for `seconds`, each on a schedule of its
    own (open loop: a slow answer does not slow the offered load), while waiting on their own mail."""
    rng = random.Random(seed)
    names = [f"p{i:02d}" for i in range(procs)]
    per_proc = max(1, round(rate * seconds / procs))
    interval = procs / rate
    plan = {name: [rng.choice([n for n in names if n != name]) for _ in range(per_proc)] for name in names}
    phase = {name: rng.uniform(0, interval) for name in names}
    expected = Counter(target for targets in plan.values() for target in targets)
    sent_at: dict[str, tuple[float, float]] = {}
    received: dict[str, list[tuple[str, float]]] = {name: [] for name in names}
    late: list[float] = []
    registered = 0
    all_registered, all_done = anyio.Event(), anyio.Event()
    began = 0.0
    done = 0

    async def sender(client: AgentClient, name: str) -> None:
        for k, target in enumerate(plan[name]):
            due = began + phase[name] + k * interval
            wait = due - time.perf_counter()
            if wait > 0:
                await anyio.sleep(wait)  # the offered load's schedule, not synchronisation
            else:
                late.append(-wait)
            body = f"{name}:{k}"
            t0 = time.perf_counter()
            await client.call("mail_send", to=target, body=body)
            sent_at[body] = (t0, time.perf_counter())

    async def waiter(client: AgentClient, name: str) -> None:
        while len(received[name]) < expected[name]:
            waited = await client.call("mail_wait", timeout_s=60, max_messages=100)
            now = time.perf_counter()
            received[name] += [(m["body"], now) for m in waited["messages"]]

    go = anyio.Event()

    async def agent(name: str) -> None:
        """One agent: its own server, registered, then sending and waiting at once; it stays up until
        every agent is done, so that the load lasts the whole run."""
        nonlocal registered, done
        async with AgentClient(serve_params(db=db, name=name), read_timeout_s=CALL_TIMEOUT_S) as client:
            await client.call("whoami")
            registered += 1
            if registered == procs:
                all_registered.set()
            await go.wait()
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter, client, name)
                tg.start_soon(sender, client, name)
            done += 1
            if done == procs:
                all_done.set()
            await all_done.wait()

    started = time.perf_counter()
    with anyio.fail_after(seconds * 5 + 300):
        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(agent, name)
            await all_registered.wait()
            print(f"  {procs} servers up and registered in {time.perf_counter() - started:.1f} s", flush=True)
            pids = await server_pids(db)
            cpu_before = sum(map(process_cpu, pids)), own_cpu()
            began = time.perf_counter() + 0.5
            go.set()
            await all_done.wait()
            elapsed = time.perf_counter() - began
            servers_cpu, client_cpu = sum(map(process_cpu, pids)) - cpu_before[0], own_cpu() - cpu_before[1]

    bodies = [body for got in received.values() for body, _ in got]
    latencies = [t - sent_at[body][1] for got in received.values() for body, t in got]
    from_start = [t - sent_at[body][0] for got in received.values() for body, t in got]
    return {
        "elapsed": elapsed,
        "sent": len(sent_at),
        "client_bodies": bodies,
        "latencies": latencies,
        "from_start": from_start,
        "expected_total": procs * per_proc,
        "late": late,
        "servers_cpu": servers_cpu,
        "client_cpu": client_cpu,
    }


async def throughput(db: str, procs: int, seconds: float) -> dict[str, Any]:
    """procs servers sending back to back to random peers for `seconds` (each also draining its own mail):
    the sustained mail_send rate, from the sends that completed inside the window."""
    names = [f"t{i}" for i in range(procs)]
    registered = 0
    all_registered, go, stop = anyio.Event(), anyio.Event(), anyio.Event()
    completed: list[float] = []
    errors: list[str] = []

    async def agent(name: str, rng: random.Random) -> None:
        nonlocal registered
        peers = [n for n in names if n != name]
        async with AgentClient(serve_params(db=db, name=name), read_timeout_s=CALL_TIMEOUT_S) as client:
            await client.call("whoami")
            registered += 1
            if registered == procs:
                all_registered.set()
            await go.wait()

            async def drain() -> None:
                while not stop.is_set():
                    await client.call("mail_wait", timeout_s=1, max_messages=500)

            async with anyio.create_task_group() as tg:
                tg.start_soon(drain)
                k = 0
                while not stop.is_set():
                    try:
                        await client.call("mail_send", to=rng.choice(peers), body=f"{name}:{k}")
                    except Exception as exc:
                        errors.append(f"{name}: {exc}")
                        break
                    completed.append(time.perf_counter())
                    k += 1

    with anyio.fail_after(seconds * 4 + 300):
        async with anyio.create_task_group() as tg:
            for i, name in enumerate(names):
                tg.start_soon(agent, name, random.Random(i))
            await all_registered.wait()
            go.set()
            await anyio.sleep(1.0)  # warm-up: connections, caches
            began = time.perf_counter()
            await anyio.sleep(seconds)  # the measuring window
            ended = time.perf_counter()
            stop.set()
    inside = [t for t in completed if began <= t <= ended]
    return {"rate": len(inside) / (ended - began), "errors": errors}


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """CPU seconds used so far by another process (Linux /proc; 0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def server_pids(db: str) -> list[int]:
    store = create_store(db)
    await store.open()
    try:
        return [s.pid for s in await store.list_sessions() if s.pid]
    finally:
        await store.close()


async def store_counts(db: str) -> dict[str, int]:
    """What the store itself holds after the load run: its own snapshot, not what the clients saw.

    Only mail of type `message` counts: servers that exit send `event` mail to their parents.
    """
    store = create_store(db)
    await store.open()
    try:
        tables = await store.dump()
    finally:
        await store.close()
    messages = {m["seq"]: m for m in tables["messages"] if m["type"] == "message"}
    receipts = [r for r in tables["receipts"] if r["message_seq"] in messages]
    return {
        "messages": len(messages),
        "distinct_bodies": len({m["body"] for m in messages.values()}),
        "receipts": len(receipts),
        "not_delivered": sum(1 for r in receipts if r["status"] == "sent"),
    }


async def run_backend(backend: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Parts (a) to (d) on one backend; prints as it goes, returns the figures for the comparison."""
    print(f"=== {backend} ===\n", flush=True)
    db = location(backend, tmp, "pair")
    try:
        return await _run_backend(backend, db, tmp, args)
    finally:
        await drop_location(db)


async def _run_backend(backend: str, db: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:

    async with (
        Client(noop_params(), read_timeout_seconds=CALL_TIMEOUT_S) as noop,
        AgentClient(serve_params(db=db, name="alice"), read_timeout_s=CALL_TIMEOUT_S) as alice,
    ):
        await alice.call("whoami")
        async with AgentClient(
            serve_params(db=db, name="bob", role="worker", parent="alice"), read_timeout_s=CALL_TIMEOUT_S
        ) as bob:
            await bob.call("whoami")
            series = await round_trips(alice, bob, noop, args.round_trips)
            wake, wake_start = await wake_latency(alice, bob, args.messages)

    table = Table(f"Round trips over stdio ({args.round_trips} each, interleaved) and wake-ups ({args.messages})")
    base = table.add("no-op tool (bare MCP SDK server)", series["noop"])
    who = table.add("whoami", series["whoami"])
    send = table.add("mail_send", series["mail_send"])
    w = table.add("wake: mail_send returned -> mail_wait returned", wake)
    table.add("wake: mail_send called   -> mail_wait returned", wake_start)
    print(table.render())
    print()
    ratio_a, ratio_b = who["p50"] / base["p50"], send["p50"] / base["p50"]
    print(f"(a) whoami / no-op        p50 {verdict(ratio_a, 1.25)}  mean {who['mean'] / base['mean']:.2f}x")
    print(f"(b) mail_send / no-op     p50 {verdict(ratio_b, 2)}  mean {send['mean'] / base['mean']:.2f}x")
    print(f"(c) wake p50 / no-op p50  {verdict(w['p50'] / base['p50'], 3)}")
    print(f"    wake p99              {verdict(w['p99'] * 1000, 10, ' ms')}")
    print(flush=True)

    figures: dict[str, Any] = {
        "ok": True,
        "whoami": ratio_a,
        "send": ratio_b,
        "wake_p50": w["p50"],
        "wake_p99": w["p99"],
    }
    procs = args.load_procs
    if procs <= 0:
        return figures
    load_db = location(backend, tmp, "load")
    print(
        f"(d) load: {procs} `maestro serve` processes offering {args.load_rate:g} messages/s in total"
        f" for {args.load_seconds:g} s, to random peers",
        flush=True,
    )
    try:
        result = await load(load_db, procs, args.load_rate, args.load_seconds, args.seed)
        counts = await store_counts(load_db)
    finally:
        await drop_location(load_db)
    bodies = result["client_bodies"]
    total = result["expected_total"]
    duplicates = sum(c - 1 for c in Counter(bodies).values() if c > 1)
    client_ok = len(bodies) == total and duplicates == 0 and len(set(bodies)) == total
    store_ok = (
        counts["messages"] == total
        and counts["distinct_bodies"] == total
        and counts["receipts"] == total
        and counts["not_delivered"] == 0
    )
    load_table = Table(f"Wake latency at {args.load_rate:g} msg/s offered ({len(result['latencies'])} messages)")
    under = load_table.add("wake: mail_send returned -> mail_wait returned", result["latencies"])
    load_table.add("wake: mail_send called   -> mail_wait returned", result["from_start"])
    print(load_table.render())
    late = result["late"]
    print(
        f"  sent {result['sent']} in {result['elapsed']:.1f} s ({result['sent'] / result['elapsed']:.0f} msg/s);"
        f" clients received {len(bodies)} ({len(set(bodies))} distinct, {duplicates} duplicates);"
        f" sends behind schedule: {len(late)} (worst {max(late, default=0) * 1000:.1f} ms)"
    )
    print(
        f"  CPU while sending: {result['servers_cpu']:.1f} s in the {procs} servers,"
        f" {result['client_cpu']:.1f} s in this one client process"
        f" ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"  store: {counts['messages']} messages, {counts['distinct_bodies']} distinct bodies,"
        f" {counts['receipts']} receipts, {counts['not_delivered']} still 'sent'"
    )
    print(f"  exactly once: clients {'yes' if client_ok else 'NO'}, store {'yes' if store_ok else 'NO'}")
    print(f"  p99 wake under load: {verdict(under['p99'] * 1000, 20, ' ms')} (p50 {under['p50'] * 1000:.2f} ms)")
    print(flush=True)
    figures.update(
        ok=client_ok and store_ok,
        load=f"{procs} x {args.load_rate:g}/s",
        once=f"{len(set(bodies))}/{total}",
        load_p99=under["p99"],
    )

    if args.tp_procs <= 0:
        return figures
    print(f"(e) throughput: {args.tp_procs} servers sending back to back for {args.tp_seconds:g} s", flush=True)
    raw = raw_sqlite_commits(tmp)
    tp_db = location(backend, tmp, "throughput")
    try:
        tp = await throughput(tp_db, args.tp_procs, args.tp_seconds)
    finally:
        await drop_location(tp_db)
    print(
        f"  mail_send sustained: {tp['rate']:.0f}/s; raw single-row SQLite commits: {raw:.0f}/s"
        f" -> {tp['rate'] / raw:.3f} of the physical limit; client errors {len(tp['errors'])}"
    )
    for error in tp["errors"][:3]:
        print(f"    {error}")
    print(flush=True)
    figures.update(tp_rate=tp["rate"], tp_ratio=tp["rate"] / raw, ok=figures["ok"] and not tp["errors"])
    return figures


async def main(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="maestro-bench-"))
    print(
        f"maestro mail benchmark  (python {sys.version.split()[0]}, SQLite stores under {tmp},"
        f" PostgreSQL at {redact_url(pg_base())})\n",
        flush=True,
    )
    results = {backend: await run_backend(backend, tmp, args) for backend in backends(args.backend)}
    side_by_side(
        results,
        [
            ("whoami p50 / no-op p50", lambda r: f"{r['whoami']:.2f}x"),
            ("mail_send p50 / no-op p50", lambda r: f"{r['send']:.2f}x"),
            ("wake p50", lambda r: f"{r['wake_p50'] * 1000:.2f} ms"),
            ("wake p99", lambda r: f"{r['wake_p99'] * 1000:.2f} ms"),
            ("load: servers x offered", lambda r: r.get("load", "-")),
            ("load: delivered exactly once", lambda r: r.get("once", "-")),
            ("load: wake p99", lambda r: f"{r['load_p99'] * 1000:.1f} ms" if "load_p99" in r else "-"),
            ("throughput: mail_send/s (8 servers)", lambda r: f"{r['tp_rate']:.0f}" if "tp_rate" in r else "-"),
            ("throughput / raw SQLite commits", lambda r: f"{r['tp_ratio']:.3f}" if "tp_ratio" in r else "-"),
        ],
    )
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--round-trips", type=int, default=500, help="round trips per kind for (a) and (b)")
    parser.add_argument("--messages", type=int, default=500, help="messages for the wake latency (c)")
    parser.add_argument("--load-procs", type=int, default=50, help="servers in the load run (0 skips (d) and (e))")
    parser.add_argument("--load-rate", type=float, default=100.0, help="messages a second offered in total in (d)")
    parser.add_argument("--load-seconds", type=float, default=60.0, help="how long (d) offers its load")
    parser.add_argument("--tp-procs", type=int, default=8, help="servers in the throughput run (e)")
    parser.add_argument("--tp-seconds", type=float, default=15.0, help="the measuring window of (e)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seed", type=int, default=7)
    sys.exit(anyio.run(main, parser.parse_args()))
