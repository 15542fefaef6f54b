"""Spawn benchmark: how soon a spawned worker is at work, against `maestro serve` cold start in the same run.

    python bench/spawn.py           # N = 10 (about half a minute)
    python bench/spawn.py --n 20

One run, on a fresh temporary project, measures:
  (a) the baseline: `maestro serve` cold start alone — start the process, MCP initialize, first tool
      call (whoami, which registers the session) — N times;
  (b) spawn to first call: from a coordinator's spawn_worker(agent="script:...") returning to the
      worker's first tool call, N workers one at a time. The worker is a tiny script agent whose first
      call is report_progress: its server stamps the report, which reaches the coordinator as event
      mail. A script worker is two cold starts in a row (the agent's interpreter, then its own
      `maestro serve`), so about 2x the baseline is the floor;
  (c) 10 workers spawned at once and exited: every exit event received by the coordinator's
      mail_wait (counted), and the wall time from the first spawn_worker call to the last event;
  (d) SIGKILL to exit event: N workers killed one at a time, from os.kill to the coordinator's
      mail_wait returning the event (the issue's claim: within a second).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from _common import Table, percentile

from maestro_mcp.client import AgentClient, serve_params

CALL_TIMEOUT_S = 120.0
PHASE_TIMEOUT_S = 120.0

AGENT = '''
"""Bench worker: its first tool call is a report; with directive "hold" it then waits to be killed."""
import anyio

from maestro_mcp.client import AgentClient


async def main() -> None:
    async with AgentClient.from_env() as agent:
        await agent.call("report_progress", kind="complete", summary="first call")
        if (await agent.call("whoami"))["directive"] == "hold":
            while True:
                await agent.call("mail_wait", timeout_s=60)


anyio.run(main)
'''

EXIT = re.compile(r"^(\S+) (exited|failed|stopped)\b")


def stamp(message: dict[str, Any]) -> float:
    """A message's server-side creation time, as epoch seconds."""
    return datetime.fromisoformat(message["created_at"].replace("Z", "+00:00")).timestamp()


class Coordinator:
    """The bench's coordinator: a real `maestro serve`, and every message its mail_wait returned."""

    def __init__(self, client: AgentClient) -> None:
        self.client = client
        self.seen: list[tuple[float, dict[str, Any]]] = []

    async def until(self, found: Any) -> Any:
        """Wait on mail until found(messages) returns something; each message comes with its arrival time."""
        with anyio.fail_after(PHASE_TIMEOUT_S):
            while not (result := found(self.seen)):
                waited = await self.client.call("mail_wait", timeout_s=30)
                now = time.time()
                self.seen += [(now, m) for m in waited["messages"]]
        return result

    def first_report(self, name: str) -> Any:
        return lambda seen: next((m for _, m in seen if m["subject"] == f"{name}: complete"), None)

    def exit_of(self, name: str) -> Any:
        def find(seen: list[tuple[float, dict[str, Any]]]) -> tuple[float, dict[str, Any]] | None:
            for at, m in seen:
                match = EXIT.match(m["subject"])
                if m["type"] == "event" and match and match[1] == name:
                    return at, m
            return None

        return find


async def cold_starts(db: str, cwd: str, n: int) -> list[float]:
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        async with AgentClient(serve_params(db=db, name=f"cold-{i}", cwd=cwd), read_timeout_s=CALL_TIMEOUT_S) as c:
            await c.call("whoami")
            samples.append(time.perf_counter() - t0)
    return samples


async def spawn_to_first_call(boss: Coordinator, agent: str, n: int) -> list[float]:
    samples = []
    for i in range(n):
        name = f"first-{i}"
        await boss.client.call("spawn_worker", agent=agent, name=name, directive="report and exit")
        returned = time.time()
        report = await boss.until(boss.first_report(name))
        samples.append(stamp(report) - returned)
        await boss.until(boss.exit_of(name))  # one at a time: the next spawn does not compete with it
    return samples


async def ten_at_once(boss: Coordinator, agent: str) -> tuple[float, int, list[int | None]]:
    names = [f"team-{i}" for i in range(10)]
    t0 = time.perf_counter()
    for name in names:
        await boss.client.call("spawn_worker", agent=agent, name=name, directive="report and exit")

    def all_exits(seen: list[tuple[float, dict[str, Any]]]) -> list[dict[str, Any]] | None:
        events = [boss.exit_of(name)(seen) for name in names]
        return [e[1] for e in events if e] if all(events) else None

    events = await boss.until(all_exits)
    wall = time.perf_counter() - t0
    sessions = {s["name"]: s for s in (await boss.client.call("list_sessions", role="worker"))["sessions"]}
    return wall, len(events), [sessions[name]["exit_code"] for name in names]


async def kill_to_event(boss: Coordinator, agent: str, n: int) -> list[float]:
    samples = []
    for i in range(n):
        name = f"killed-{i}"
        spawned = await boss.client.call("spawn_worker", agent=agent, name=name, directive="hold")
        await boss.until(boss.first_report(name))  # it is up and holding
        killed = time.time()
        os.kill(spawned["pid"], signal.SIGKILL)
        arrived, _ = await boss.until(boss.exit_of(name))
        samples.append(arrived - killed)
    return samples


async def main(n: int) -> int:
    with tempfile.TemporaryDirectory(prefix="maestro-bench-spawn-") as tmp:
        root = Path(tmp)
        (root / ".maestro").mkdir()
        (root / "agents").mkdir()
        (root / "agents" / "bench_agent.py").write_text(AGENT, encoding="utf-8")
        db = str(root / ".maestro" / "maestro.db")
        agent = "script:agents/bench_agent.py"
        print(f"spawn benchmark: N = {n}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, store {db}")

        cold = await cold_starts(db, str(root), n)
        params = serve_params(db=db, name="bench", cwd=str(root))
        async with AgentClient(params, read_timeout_s=CALL_TIMEOUT_S) as client:
            boss = Coordinator(client)
            await client.call("whoami")
            first = await spawn_to_first_call(boss, agent, n)
            wall, exits, codes = await ten_at_once(boss, agent)
            kills = await kill_to_event(boss, agent, n)

    table = Table("(a) baseline, (b) spawn_worker returning -> the worker's first tool call, (d) kill -> event")
    base = table.add("(a) maestro serve cold start + first call", cold)
    spawn = table.add("(b) spawn_worker returned -> first call", first)
    killed = table.add("(d) SIGKILL -> exit event at coordinator", kills)
    print(table.render())
    print()
    print(f"(b) / (a): p50 {spawn['p50'] / base['p50']:.2f}x, p90 {spawn['p90'] / base['p90']:.2f}x")
    print(f"(c) 10 workers spawned at once: {exits}/10 exit events received in {wall:.2f} s; exit codes {codes}")
    within = sum(1 for k in kills if k < 1.0)
    print(f"(d) kill reported within a second: {within}/{len(kills)} (p90 {percentile(kills, 90) * 1000:.0f} ms)")
    ok = exits == 10 and all(c == 0 for c in codes) and killed["p90"] < 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10, help="samples per series (default 10)")
    sys.exit(anyio.run(main, parser.parse_args().n))
