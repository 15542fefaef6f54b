"""Real `maestro serve` processes racing for one pool of tasks: each task goes to exactly one claimer.

Six worker agents, each an MCP client of its own server subprocess on one store (SQLite, then
PostgreSQL, where they share nothing but the database), claim
in loops until nothing is left. They connect and register first, then all start claiming at
the same moment, so the claims really overlap. Every wait is bounded; nothing sleeps.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import anyio
import pytest
from storekit import StoreKit

from maestro_mcp.cli.common import services_at
from maestro_mcp.client import AgentClient, serve_params
from maestro_mcp.models import Role, TaskSpec, TaskStatus

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

WORKERS = 6
TASKS = 150
START_S = 30  # starting a server is a second or so of imports on a slow machine
RACE_S = 60


async def test_concurrent_processes_claim_every_task_exactly_once(kit: StoreKit, tmp_path: Path) -> None:
    db = kit.location
    async with services_at(db) as svc:
        boss = (await svc.sessions.register(name="boss", role=Role.coordinator, agent="script")).session
        created = await svc.tasks.create(boss, [TaskSpec(key=f"t{i}", title=f"Task {i}") for i in range(TASKS)])
        pool = {t.id for t in created}

        claims: dict[str, list[str]] = {f"w{i}": [] for i in range(WORKERS)}
        errors: list[str] = []
        registered, drained = Barrier(WORKERS), Barrier(WORKERS)
        go, checked = anyio.Event(), anyio.Event()

        async def worker(name: str) -> None:
            params = serve_params(db=db, name=name, role="worker", parent="boss", cwd=str(tmp_path))
            async with AgentClient(params, read_timeout_s=START_S) as client:
                await client.call("whoami")  # registers the session before the race starts
                registered.arrive()
                await go.wait()
                while True:
                    try:
                        result = await client.call("task_ready", claim=True)
                    except Exception as exc:  # a lock error, or anything else, must surface here
                        errors.append(f"{name}: {exc}")
                        break
                    if result["claimed"] is None:
                        break
                    claims[name].append(result["claimed"]["id"])
                drained.arrive()
                # Stay connected until the store is checked: a server that stops releases its tasks.
                await checked.wait()

        async with anyio.create_task_group() as tg:
            for name in claims:
                tg.start_soon(worker, name)
            with anyio.fail_after(START_S * 2):
                await registered.wait()
            go.set()
            with anyio.fail_after(RACE_S):
                await drained.wait()
            stored = {t.id: t for t in await svc.store.list_tasks()}
            names = {s.id: s.name for s in await svc.store.list_sessions()}
            checked.set()

        assert errors == []
        counted = Counter(task_id for got in claims.values() for task_id in got)
        assert set(counted) == pool, f"never claimed: {pool - set(counted)}"
        assert [task_id for task_id, n in counted.items() if n > 1] == []
        assert sum(1 for got in claims.values() if got) > 1, "one worker won every claim: nothing overlapped"
        for name, got in claims.items():
            for task_id in got:
                task = stored[task_id]
                assert task.status is TaskStatus.in_progress and names[task.assignee_id or ""] == name
                assert task.attempts == 1


class Barrier:
    """Set once `parties` tasks have arrived."""

    def __init__(self, parties: int) -> None:
        self.left = parties
        self.event = anyio.Event()

    def arrive(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.event.set()

    async def wait(self) -> None:
        await self.event.wait()
