"""`maestro run` benchmark: the built-in scheduler against a scripted LLM-style coordinator, same DAG, same run.

    python bench/run.py                     # 1,000 tasks, 8 workers, 20 ms of work per task
    python bench/run.py --tasks 200 --task-ms 50

One run builds a layered DAG (`--width` tasks per wave, each depending on two tasks of the wave
before), then runs it twice on fresh temporary projects (SQLite), with 8 script workers each:

  (a) the baseline: a scripted coordinator that does what an LLM coordinator does — task_create,
      spawn_worker x N, then loop on mail_wait; on each event it looks at task_ready and, when tasks
      are ready, mails its workers to take them (workers claim with task_ready(claim=true));
  (b) `maestro run PLAN --workers N --agent script:...`: the built-in scheduler hands each ready
      task to a free worker.

The workers are the same script in both: claim, work (sleep `--task-ms`), report complete with the
times it claimed and finished; when it has nothing, it waits for mail. From those times:

  * scheduler overhead, per task: from the moment it became ready (its last dependency finished, or
    the run started) *and* the worker that took it was free (finished its previous task), to that
    worker holding it. p50 / p99, and the ratio of (b) to (a);
  * whole run wall time, against the physical limit: the DAG's critical path x the per-task time
    (and the work bound: tasks x per-task time / workers).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import yaml
from _common import Table

from maestro_mcp.client import AgentClient, serve_params
from maestro_mcp.service import Services
from maestro_mcp.store import create_store

RUN_TIMEOUT_S = 900.0

WORKER = '''
"""Bench worker: claim, work for TASK_MS, report the claim and finish times; with nothing to do, wait for mail."""
import os
import time

import anyio

from maestro_mcp.client import AgentClient

TASK_S = float(os.environ.get("BENCH_TASK_MS", "20")) / 1000


async def main() -> None:
    async with AgentClient.from_env(read_timeout_s=300) as agent:
        await agent.call("whoami")
        started = time.time()
        while True:
            task = (await agent.call("task_ready", claim=True))["claimed"]
            if task is None:
                waited = await agent.call("mail_wait", timeout_s=120)
                if waited["timed_out"] or any(m["subject"] == "stop" for m in waited["messages"]):
                    return
                continue
            claimed = time.time()
            await anyio.sleep(TASK_S)
            finished = time.time()
            result = f"started={started!r} claimed={claimed!r} done={finished!r}"
            await agent.call("report_progress", kind="complete", task_id=task["id"], summary=result)
            started = finished


anyio.run(main)
'''


def layered(n: int, width: int, rng: random.Random) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        wave, pos = divmod(i, width)
        deps = []
        if wave:
            previous = range((wave - 1) * width, min(wave * width, n))
            deps = sorted({f"t{j}" for j in rng.sample(list(previous), min(2, len(previous)))})
        del pos
        tasks.append({"key": f"t{i}", "title": f"task {i}", "depends_on": deps})
    return tasks


def critical_path(tasks: list[dict[str, Any]]) -> int:
    depth: dict[str, int] = {}
    for t in tasks:  # in dependency order by construction
        depth[t["key"]] = 1 + max((depth[d] for d in t["depends_on"]), default=0)
    return max(depth.values())


def project(tmp: Path, name: str) -> Path:
    root = tmp / name
    (root / ".git").mkdir(parents=True)
    (root / "bench_worker.py").write_text(WORKER)
    return root


async def overheads(db: str, t0: float) -> tuple[list[float], float]:
    """Per-task overhead (s), and the last finish time, from the workers' reported times."""
    store = create_store(db)
    await store.open()
    try:
        svc = Services.create(store)
        records = await svc.store.list_tasks()
        by_id = {t.id: t for t in records}
        times: dict[str, dict[str, float]] = {}
        for t in records:
            assert t.result is not None, f"{t.key} has no result: {t.status.value}"
            times[t.id] = {k: float(v) for k, v in (part.split("=") for part in t.result.split())}
        samples = []
        for t in records:
            ready = max((times[d]["done"] for d in t.depends_on), default=t0)
            since = max(ready, times[t.id]["started"])
            samples.append(max(0.0, times[t.id]["claimed"] - since))
        del by_id
        return samples, max(v["done"] for v in times.values())
    finally:
        await store.close()


async def run_builtin(root: Path, tasks: list[dict[str, Any]], args: argparse.Namespace) -> tuple[float, float]:
    (root / "plan.yaml").write_text(yaml.safe_dump({"tasks": tasks}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")} | {"BENCH_TASK_MS": str(args.task_ms)}
    argv = [sys.executable, "-m", "maestro_mcp", "run", "plan.yaml", "--agent", "script:bench_worker.py"]
    argv += ["--workers", str(args.workers), "--sync"]
    t0 = time.time()
    with anyio.fail_after(RUN_TIMEOUT_S):
        done = await anyio.run_process(argv, cwd=str(root), env=env, check=False)
    wall = time.time() - t0
    if done.returncode != 0:
        raise SystemExit(f"maestro run failed ({done.returncode}):\n{done.stdout.decode()}{done.stderr.decode()}")
    return t0, wall


async def run_coordinator(root: Path, tasks: list[dict[str, Any]], args: argparse.Namespace) -> tuple[float, float]:
    db = str(root / ".maestro" / "maestro.db")
    env = {"BENCH_TASK_MS": str(args.task_ms)}
    os.environ["BENCH_TASK_MS"] = str(args.task_ms)  # the workers inherit the coordinator's server's environment
    params = serve_params(db=db, name="lead", cwd=str(root), env=env)
    async with AgentClient(params, read_timeout_s=300) as lead:
        t0 = time.time()
        await lead.call("task_create", tasks=tasks)
        workers = []
        for n in range(args.workers):
            spawned = await lead.call(
                "spawn_worker", agent="script:bench_worker.py", name=f"w{n}", directive="take ready tasks"
            )
            workers.append(spawned["name"])
        with anyio.fail_after(RUN_TIMEOUT_S):
            while True:
                waited = await lead.call("mail_wait", timeout_s=30, max_messages=200)
                ready = await lead.call("task_ready", limit=20)
                if ready["tasks"]:
                    await lead.call("mail_send", to="children", subject="work", body="Tasks are ready: claim one.")
                left = await lead.call("task_list", status="done", limit=1)
                if left["more"] + len(left["tasks"]) == len(tasks):
                    break
                del waited
        wall = time.time() - t0
        for name in workers:
            await lead.call("stop_worker", session_id=name, grace_s=5)
    return t0, wall


async def main(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    tasks = layered(args.tasks, args.width, rng)
    path = critical_path(tasks)
    task_s = args.task_ms / 1000
    print(
        f"DAG: {len(tasks)} tasks in {path} waves of {args.width}, critical path {path} tasks;"
        f" {args.workers} script workers; {args.task_ms} ms of work per task"
    )
    results: dict[str, tuple[list[float], float]] = {}
    makespans: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="maestro-bench-run-") as tmp_name:
        tmp = Path(tmp_name)
        for label, runner in (("LLM-style coordinator", run_coordinator), ("maestro run", run_builtin)):
            root = project(tmp, label.split()[0].lower())
            t0, wall = await runner(root, tasks, args)
            samples, last = await overheads(str(root / ".maestro" / "maestro.db"), t0)
            results[label] = (samples, wall)
            makespans[label] = last - t0
            shutil.rmtree(root / ".maestro" / "logs", ignore_errors=True)
    table = Table("Scheduler overhead: task ready and its worker free -> the worker holds it")
    stats = {label: table.add(label, samples) for label, (samples, _) in results.items()}
    print(table.render())
    base, ours = stats["LLM-style coordinator"], stats["maestro run"]
    print(f"maestro run / coordinator: p50 {ours['p50'] / base['p50']:.2f}x, p99 {ours['p99'] / base['p99']:.2f}x")
    limit = path * task_s
    work = len(tasks) * task_s / args.workers
    print(f"Whole run (physical limit: critical path x per-task time = {limit:.2f} s; work bound {work:.2f} s)")
    print("  (start -> last task done; in brackets the command's own wall time, with start-up and shutdown)")
    for label, (_, wall) in results.items():
        span = makespans[label]
        print(
            f"  {label:<22} {span:8.2f} s   {span / limit:6.2f}x the critical path   {span / work:6.2f}x the work bound"
            f"   [{wall:.2f} s]"
        )
    summary = {
        label: {"wall_s": wall, "makespan_s": makespans[label]} | stats[label] for label, (_, wall) in results.items()
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--width", type=int, default=50, help="Tasks per wave.")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--task-ms", type=float, default=20.0, help="Simulated work per task.")
    parser.add_argument("--seed", type=int, default=15)
    sys.exit(anyio.run(main, parser.parse_args()))
