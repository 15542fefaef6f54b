"""Task benchmark: maestro's task DAG as ratios against a bare MCP server, measured in the same run.

    python bench/tasks.py                        # everything, on SQLite and on PostgreSQL side by side
    python bench/tasks.py --backend sqlite       # one backend only
    python bench/tasks.py --race-tasks 500       # a smaller claim race

One run starts, on fresh stores of each backend (temporary SQLite files; new PostgreSQL schemas at
MAESTRO_BENCH_PG or MAESTRO_TEST_PG, default the local `test` database, dropped afterwards):
  * a bare MCP SDK stdio server with a no-op tool (the baseline),
  * `maestro serve` processes for a coordinator and a worker,
and measures:
  (a) task_ready (no claim) on a 10,000-task DAG with about 10 ready tasks, interleaved with
      no-op round trips so that machine noise hits both alike       target p50 <= 3x no-op
  (b) task_create of a 1,000-task DAG in one call (wall time of the tool call, several runs)
  (c) a claim race: 8 agents, each its own process with its own `maestro serve` (16 processes),
      claim from a pool of 2,000 ready tasks until none is left; every task must be claimed
      exactly once (counted from what the clients got, and checked in the store), claims per
      second, and no client may see a lock error (or any other error).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from _common import Table, backends, drop_location, location, noop_params, pg_base, side_by_side, verdict
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client

from maestro_mcp.client import AgentClient, ToolCallError, serve_params
from maestro_mcp.config import redact_url
from maestro_mcp.models import Role, TaskSpec, TaskStatus
from maestro_mcp.service import Services
from maestro_mcp.store import create_store

CALL_TIMEOUT_S = 120.0


def dag(n: int, roots: int, rng: random.Random, prefix: str = "t") -> list[dict[str, Any]]:
    """n tasks: `roots` without dependencies, every other one depending on 1-3 earlier tasks."""
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        deps = [] if i < roots else sorted({f"{prefix}{rng.randrange(i)}" for _ in range(rng.randint(1, 3))})
        tasks.append(
            {
                "key": f"{prefix}{i}",
                "title": f"Task {i} of the benchmark plan",
                "description": "Do the thing, then report.",
                "depends_on": deps,
                "files": [f"src/module_{i % 97}.py"],
                "acceptance": ["it works", "it is tested"],
            }
        )
    return tasks


async def open_services(db: str) -> tuple[Services, Any]:
    store = create_store(db)
    await store.open()
    return Services.create(store), store


async def ready_vs_noop(db: str, n_tasks: int, roots: int, rounds: int, create_runs: int, seed: int) -> dict[str, Any]:
    svc, store = await open_services(db)
    try:
        boss = await svc.sessions.register(name="boss", role=Role.coordinator, agent="script")
        started = time.perf_counter()
        specs = [TaskSpec.model_validate(t) for t in dag(n_tasks, roots, random.Random(seed))]
        await svc.tasks.create(boss.session, specs)
        setup_s = time.perf_counter() - started
        ready_in_store = len(await store.list_tasks(status=TaskStatus.ready))
    finally:
        await store.close()

    series: dict[str, list[float]] = {"noop": [], "task_ready": [], "task_create": []}
    async with (
        Client(noop_params(), read_timeout_seconds=CALL_TIMEOUT_S) as noop,
        AgentClient(
            serve_params(db=db, name="worker", role="worker", parent="boss"), read_timeout_s=CALL_TIMEOUT_S
        ) as worker,
        AgentClient(
            serve_params(db=db, session=boss.session.id, token=boss.token), read_timeout_s=CALL_TIMEOUT_S
        ) as coordinator,
    ):
        await worker.call("whoami")
        await coordinator.call("whoami")
        warmup = max(20, rounds // 10)
        offered = 0
        for i in range(warmup + rounds):
            t0 = time.perf_counter()
            await noop.call_tool("noop", {})
            t1 = time.perf_counter()
            result = await worker.call("task_ready")
            t2 = time.perf_counter()
            offered = len(result["tasks"])
            if i >= warmup:
                series["noop"].append(t1 - t0)
                series["task_ready"].append(t2 - t1)

        # (b) after (a): each run adds 1,000 more tasks to this (already large) store.
        for run in range(create_runs):
            plan = dag(1000, 10, random.Random(seed + run + 1), prefix=f"c{run}-")
            t0 = time.perf_counter()
            created = await coordinator.call("task_create", tasks=plan)
            series["task_create"].append(time.perf_counter() - t0)
            assert len(created["tasks"]) == 1000
    return {"series": series, "setup_s": setup_s, "ready": ready_in_store, "offered": offered}


async def race_worker(db: str, name: str) -> None:
    """One racing agent, in its own process like a real one: its client and its own `maestro serve`.

    Protocol on stdin/stdout with the benchmark: prints `ready` once registered, claims from `go`
    until nothing is left, prints its claims and errors as JSON, and exits on `exit` (its server
    would release its tasks on stopping, so it waits until the store has been checked).
    """
    stdin = anyio.wrap_file(sys.stdin)
    params = serve_params(db=db, name=name, role="worker", parent="boss")
    async with AgentClient(params, read_timeout_s=CALL_TIMEOUT_S) as client:
        await client.call("whoami")
        print("ready", flush=True)
        await stdin.readline()
        claims: list[str] = []
        errors: list[str] = []
        while True:
            try:
                result = await client.call("task_ready", claim=True)
            except ToolCallError as exc:
                errors.append(f"{name}: {exc.text}")
                break
            except Exception as exc:  # a transport failure is an error too
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                break
            if result["claimed"] is None:
                break
            claims.append(result["claimed"]["id"])
        print(json.dumps({"claims": claims, "errors": errors}), flush=True)
        await stdin.readline()


async def claim_race(db: str, n_tasks: int, procs: int) -> dict[str, Any]:
    svc, store = await open_services(db)
    try:
        boss = await svc.sessions.register(name="boss", role=Role.coordinator, agent="script")
        created = await svc.tasks.create(
            boss.session, [TaskSpec(key=f"r{i}", title=f"Race task {i}") for i in range(n_tasks)]
        )
        pool = {t.id for t in created}
        names = [f"w{i}" for i in range(procs)]
        claims: dict[str, list[str]] = {}
        errors: list[str] = []
        async with contextlib.AsyncExitStack() as stack:
            workers = {
                name: await stack.enter_async_context(
                    await anyio.open_process([sys.executable, __file__, "--race-worker", name, "--db", db])
                )
                for name in names
            }
            lines = {name: BufferedByteReceiveStream(proc.stdout) for name, proc in workers.items() if proc.stdout}

            async def line(name: str) -> str:
                return (await lines[name].receive_until(b"\n", 10_000_000)).decode()

            with anyio.fail_after(CALL_TIMEOUT_S):
                for name in names:
                    assert await line(name) == "ready", f"{name} did not start"
            began = time.perf_counter()
            for proc in workers.values():
                assert proc.stdin is not None
                await proc.stdin.send(b"go\n")

            async def collect(name: str) -> None:
                report = json.loads(await line(name))
                claims[name] = report["claims"]
                errors.extend(report["errors"])

            with anyio.fail_after(600):
                async with anyio.create_task_group() as tg:
                    for name in names:
                        tg.start_soon(collect, name)
            elapsed = time.perf_counter() - began
            stored = await store.list_tasks()
            for proc in workers.values():
                assert proc.stdin is not None
                await proc.stdin.send(b"exit\n")
            with anyio.fail_after(CALL_TIMEOUT_S):
                for proc in workers.values():
                    await proc.wait()
    finally:
        await store.close()

    counted = Counter(task_id for got in claims.values() for task_id in got)
    in_store = {t.id for t in stored if t.status is TaskStatus.in_progress and t.assignee_id and t.attempts == 1}
    return {
        "elapsed": elapsed,
        "pool": len(pool),
        "exactly_once": sum(1 for task_id in pool if counted[task_id] == 1),
        "duplicates": sum(n - 1 for n in counted.values() if n > 1),
        "in_store": len(in_store & pool),
        "per_worker": {name: len(claims.get(name, [])) for name in names},
        "errors": errors,
        "lock_errors": [e for e in errors if "lock" in e.lower() or "busy" in e.lower()],
    }


async def run_backend(backend: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Parts (a), (b) and (c) on one backend; prints as it goes, returns the figures for the comparison."""
    print(f"=== {backend} ===\n", flush=True)
    dag_db, race_db, alone_db = (location(backend, tmp, name) for name in ("dag", "race", "alone"))
    try:
        dag_run = await ready_vs_noop(dag_db, args.dag_tasks, args.roots, args.round_trips, args.create_runs, args.seed)
        series = dag_run["series"]
        print(
            f"DAG of {args.dag_tasks} tasks set up in {dag_run['setup_s']:.2f} s;"
            f" {dag_run['ready']} ready in the store, task_ready offered {dag_run['offered']}\n"
        )
        table = Table(f"Round trips over stdio ({args.round_trips} each, interleaved)")
        base = table.add("no-op tool (bare MCP SDK server)", series["noop"])
        ready = table.add(f"task_ready (no claim), {args.dag_tasks}-task DAG", series["task_ready"])
        create = table.add("task_create, 1,000-task DAG in one call", series["task_create"])
        print(table.render())
        print()
        print(
            f"(a) task_ready / no-op     p50 {verdict(ready['p50'] / base['p50'], 3)}"
            f"  p99 {ready['p99'] / base['p99']:.2f}x  mean {ready['mean'] / base['mean']:.2f}x"
        )
        print(
            f"(b) task_create 1,000 tasks: p50 {create['p50'] * 1000:.0f} ms"
            f" ({create['p50'] / 1000 * 1e6:.0f} µs per task, {create['p50'] / base['p50']:.0f}x one no-op round trip)"
        )
        print(flush=True)

        print(
            f"(c) claim race: {args.race_procs} `maestro serve` processes (each with its own agent process)"
            f" over {args.race_tasks} tasks",
            flush=True,
        )
        race = await claim_race(race_db, args.race_tasks, args.race_procs)
        alone = await claim_race(alone_db, args.race_tasks // 5, 1)
    finally:
        for loc in (dag_db, race_db, alone_db):
            await drop_location(loc)
    print(
        f"    claimed exactly once: {race['exactly_once']} of {race['pool']}"
        f" (duplicates {race['duplicates']}; in the store in_progress with one attempt: {race['in_store']})"
    )
    print(
        f"    {race['pool'] / race['elapsed']:.0f} claims/s ({race['elapsed']:.2f} s from go to the last empty claim)"
    )
    print(f"    claims per worker: {' '.join(f'{n}={c}' for n, c in race['per_worker'].items())}")
    print(
        f"    for scale, one claimer alone: {alone['pool'] / alone['elapsed']:.0f} claims/s"
        f" over {alone['pool']} tasks ({alone['exactly_once']} claimed once)"
    )
    print(f"    lock errors seen by clients: {len(race['lock_errors'])}; any errors: {len(race['errors'])}")
    for error in race["errors"][:5]:
        print(f"      {error}")
    print(flush=True)
    ok = (
        alone["exactly_once"] == alone["pool"]
        and race["exactly_once"] == race["pool"]
        and race["in_store"] == race["pool"]
        and race["duplicates"] == 0
        and not race["errors"]
    )
    return {
        "ok": ok,
        "ready_ratio": ready["p50"] / base["p50"],
        "ready_p50": ready["p50"],
        "create_p50": create["p50"],
        "once": f"{race['exactly_once']}/{race['pool']}",
        "claims_s": race["pool"] / race["elapsed"],
        "errors": len(race["errors"]),
    }


async def main(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="maestro-bench-tasks-"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"maestro task benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load},"
        f" SQLite stores under {tmp}, PostgreSQL at {redact_url(pg_base())})\n",
        flush=True,
    )
    results = {backend: await run_backend(backend, tmp, args) for backend in backends(args.backend)}
    side_by_side(
        results,
        [
            ("task_ready p50 / no-op p50", lambda r: f"{r['ready_ratio']:.2f}x"),
            ("task_ready p50", lambda r: f"{r['ready_p50'] * 1000:.2f} ms"),
            ("task_create 1,000 tasks p50", lambda r: f"{r['create_p50'] * 1000:.0f} ms"),
            ("claim race: claimed exactly once", lambda r: r["once"]),
            ("claim race: claims/s", lambda r: f"{r['claims_s']:.0f}"),
            ("claim race: client errors", lambda r: str(r["errors"])),
        ],
    )
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dag-tasks", type=int, default=10_000, help="tasks in the DAG for (a)")
    parser.add_argument("--roots", type=int, default=10, help="tasks without dependencies (the ready ones)")
    parser.add_argument("--round-trips", type=int, default=500, help="round trips per kind for (a)")
    parser.add_argument("--create-runs", type=int, default=5, help="1,000-task task_create calls for (b)")
    parser.add_argument("--race-tasks", type=int, default=2000, help="tasks in the claim race (c)")
    parser.add_argument("--race-procs", type=int, default=8, help="worker processes in the claim race (c)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--race-worker", help=argparse.SUPPRESS)  # internal: one racing agent process
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.race_worker:
        anyio.run(race_worker, args.db, args.race_worker)
        sys.exit(0)
    sys.exit(anyio.run(main, args))
