"""Eight real `maestro serve` processes racing compare-and-sets on one key: exactly one wins per version.

Each agent is an MCP client of its own server subprocess on one store (SQLite, then PostgreSQL). They
register first, then all start at one moment; each reads the counter and tries to set it one higher
with `if_version`, again and again. Every wait is bounded; nothing sleeps.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from storekit import StoreKit

from maestro_mcp.cli.common import services_at
from maestro_mcp.client import AgentClient, ToolCallError, serve_params
from maestro_mcp.models import Role

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RACERS = 8
ROUNDS = 6
START_S = 60  # eight servers importing at once on a slow machine
RACE_S = 90


async def test_racing_processes_each_version_of_a_key_is_won_exactly_once(kit: StoreKit, tmp_path: Path) -> None:
    db = kit.location
    async with services_at(db) as svc:
        boss = (await svc.sessions.register(name="boss", role=Role.coordinator, agent="script")).session
        await svc.state.set(boss, "counter", json.dumps([]), if_version=0)

        wins: dict[str, list[int]] = {f"r{i}": [] for i in range(RACERS)}
        conflicts: dict[str, int] = dict.fromkeys(wins, 0)
        errors: list[str] = []
        ready, finished = anyio.Event(), anyio.Event()
        registered = 0
        done = 0

        async def racer(name: str) -> None:
            nonlocal registered, done
            params = serve_params(db=db, name=name, role="worker", parent="boss", cwd=str(tmp_path))
            async with AgentClient(params, read_timeout_s=START_S) as client:
                await client.call("whoami")
                registered += 1
                if registered == RACERS:
                    ready.set()
                await ready.wait()
                for _ in range(ROUNDS):
                    seen = await client.call("state_get", key="counter")
                    value = json.loads(seen["value"])
                    try:
                        won = await client.call(
                            "state_set", key="counter", value=json.dumps([*value, name]), if_version=seen["version"]
                        )
                    except ToolCallError as exc:
                        if f"not {seen['version']}" not in exc.text or "is at version" not in exc.text:
                            errors.append(f"{name}: {exc.text}")
                        conflicts[name] += 1
                        continue
                    wins[name].append(won["version"])
                done += 1
                if done == RACERS:
                    finished.set()

        with anyio.fail_after(START_S + RACE_S):
            async with anyio.create_task_group() as tg:
                for name in wins:
                    tg.start_soon(racer, name)
                await finished.wait()

        final = await svc.state.require("counter")
        appended = json.loads(final.value)
        won_versions = sorted(v for got in wins.values() for v in got)
        assert errors == []
        # Every version after the first was won by exactly one racer, and no win was lost.
        assert won_versions == list(range(2, final.version + 1))
        assert len(appended) == len(won_versions)
        assert sorted(appended) == sorted(name for name, got in wins.items() for _ in got)
        assert sum(conflicts.values()) > 0, "no race happened: every compare-and-set won"
