"""Liveness benchmark: SIGKILL of agents nobody spawned, to their tasks being released.

    python bench/liveness.py          # N = 10 agents per case (about a minute)
    python bench/liveness.py --n 50   # the issue's 50

Each agent is tests/liveness_agent.py: an agent a human started, with its own `maestro serve` (no
spawner), holding one claimed task. A coordinator's server (`lead`) is the other server in the project.
All N agents of a case are killed at once; the time is from the kill to the coordinator's mail_wait
returning the event that says the session ended and its task went back to ready (released first,
then told). Cases:

  (a) baseline: only the agent is SIGKILLed; its own server sees stdin close and ends the session;
  (b) the agent and its server are SIGKILLed on this host: another server sees the pid gone;
  (c) the same from "another host" (MAESTRO_HOST set for the agents): heartbeat expiry decides.

Then the cost of the beat itself, in-process on the same store: one heartbeat UPDATE, and one
sweep (the indexed SELECT every server runs on each beat) with N+1 live sessions, against
touch_session (the UPDATE every tool call already did) as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import anyio
import anyio.abc
from _common import Table

from maestro_mcp.client import AgentClient, serve_params
from maestro_mcp.models import Role
from maestro_mcp.service import Services
from maestro_mcp.store import create_store

AGENT = str(Path(__file__).resolve().parent.parent / "tests" / "liveness_agent.py")
WAIT_S = 60.0


async def start_agent(db: str, project: Path, name: str, env: dict[str, str]) -> anyio.abc.Process:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")} | env | {"MAESTRO_DB": db}
    process = await anyio.open_process([sys.executable, AGENT, db, name, "lead"], env=child_env, cwd=project)
    assert process.stdout is not None
    with anyio.fail_after(WAIT_S):
        line = b""
        async for chunk in process.stdout:
            line += chunk
            if b"\n" in line:
                break
    assert json.loads(line.decode())["task"], "the agent holds a task"
    return process


async def run_case(services: Services, db: str, project: Path, case: str, n: int) -> list[float]:
    env = {"MAESTRO_HOST": "elsewhere.example"} if case == "another host" else {}
    names = [f"{case.split()[0]}-{i}" for i in range(n)]
    lead_server = serve_params(db=db, name="lead", cwd=str(project))
    async with AgentClient(lead_server, read_timeout_s=WAIT_S) as lead:
        await lead.call("task_create", tasks=[{"title": f"job {name}"} for name in names])
        agents = [await start_agent(db, project, name, env) for name in names]
        pids = []
        for name in names:
            record = await services.store.get_session(name)
            assert record is not None and record.pid is not None
            pids.append(record.pid)
        await lead.call("mail_inbox", limit=500)  # nothing older than the kill is counted
        killed = time.perf_counter()
        for process, pid in zip(agents, pids, strict=True):
            os.kill(process.pid, signal.SIGKILL)
            if case != "baseline":
                os.kill(pid, signal.SIGKILL)
        seen: dict[str, float] = {}
        with anyio.move_on_after(WAIT_S):
            while len(seen) < n:
                got = await lead.call("mail_wait", timeout_s=30, max_messages=500)
                at = time.perf_counter()
                for m in got["messages"]:
                    who = m["subject"].split()[0]
                    if m["type"] == "event" and who in names and "released: back to ready" in m["body"]:
                        seen.setdefault(who, at - killed)
        if len(seen) < n:
            sessions = await services.store.list_sessions(live=True)
            raise SystemExit(f"{case}: {n - len(seen)} not noticed in {WAIT_S:g} s; live: {[s.name for s in sessions]}")
        for process in agents:
            await process.wait()
        left = [t for t in (await lead.call("task_list", status="in_progress"))["tasks"] if t["title"][4:] in names]
        assert not left, f"tasks still in progress: {left}"
    return list(seen.values())


async def beat_cost(services: Services, rounds: int) -> dict[str, list[float]]:
    me = (await services.store.list_sessions(live=True))[0]
    out: dict[str, list[float]] = {"touch": [], "heartbeat": [], "sweep": []}
    for _ in range(rounds):
        for name, call in (
            ("touch", lambda: services.store.touch_session(me.id)),
            ("heartbeat", lambda: services.liveness.beat(me.id)),
            ("sweep", lambda: services.liveness.sweep(own=me.id)),
        ):
            started = time.perf_counter()
            await call()
            out[name].append(time.perf_counter() - started)
    return out


async def fresh(tmp: str, case: str) -> tuple[Path, str, Services]:
    """A project of its own per case: tasks released by one case are not claimed by the next."""
    project = Path(tmp) / case.replace(" ", "-")
    (project / ".maestro").mkdir(parents=True)
    db = str(project / ".maestro" / "maestro.db")
    store = create_store(db)
    await store.open()
    return project, db, Services.create(store)


async def main(n: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        table = Table(f"SIGKILL to task released and coordinator told, {n} agents killed at once per case")
        for case, note in (
            ("baseline", "agent killed, its server ends it"),
            ("same host", "agent + server killed: pid check"),
            ("another host", "agent + server killed: heartbeat expiry"),
        ):
            project, db, services = await fresh(tmp, case)
            try:
                samples = await run_case(services, db, project, case, n)
            finally:
                await services.store.close()
            table.add(case, samples, note)
        print(table.render())
        print()
        project, db, services = await fresh(tmp, "cost")
        store = services.store
        try:
            for i in range(n * 3):
                await services.sessions.register(name=f"s{i}", role=Role.worker, agent="script")
            for s in await store.list_sessions():
                await services.liveness.beat(s.id)
            costs = await beat_cost(services, rounds)
            cost = Table(f"cost of one beat on SQLite, {rounds} rounds, {n * 3} live sessions with heartbeats")
            cost.add("touch_session (baseline)", costs["touch"])
            cost.add("heartbeat UPDATE", costs["heartbeat"])
            cost.add("sweep SELECT", costs["sweep"])
            print(cost.render())
            config = services.config
            print(
                f"\nper serve process: 1 heartbeat + 1 sweep every {config.heartbeat_s:g} s;"
                f" expiry across hosts {config.heartbeat_expiry_s:g} s"
            )
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    anyio.run(main, args.n, args.rounds)
