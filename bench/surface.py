"""The agent surface: what the tool list costs every request, and a full inbox read beside the no-op.

    python bench/surface.py                     # this checkout
    PYTHONPATH=/path/to/other/tree python bench/surface.py   # another version, measured the same way

One run, on a fresh SQLite store:
  (a) tools/list of a real `maestro serve` per role (--role worker, --role coordinator): tools,
      characters in total (compact JSON, as counted by the budget test), characters a model reads
      (name, description, input schema), and the largest tool. The figures before this work are
      printed beside them as recorded (commit 5c1f3a8, the same measurement).
  (b) round trips, interleaved so that machine noise hits every series alike, as ratios of the bare
      MCP SDK no-op (bench/noop_server.py): mail_inbox(limit=20, unread_only=False) returning 20
      messages with 400-character bodies (target <= 2x), whoami (<= 1.25x), mail_send (<= 2.5x).

Only the MCP client and `maestro serve` are used, so another version of maestro can be measured by
putting its tree first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _common import Table, noop_params, verdict
from mcp import Client

from maestro_mcp.client import AgentClient, serve_params

CALL_TIMEOUT_S = 120.0
BODY = ("The API's error paths need tests before the docs can describe them. " * 6)[:400]
BEFORE = {"tools": 18, "total": 46_422, "model": 13_305, "largest": ("whoami", 5_128)}
"""Commit 5c1f3a8, before issue 12: every role got the same list."""


def size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


async def tool_list(db: str, role: str) -> dict[str, Any]:
    async with Client(serve_params(db=db, role=role), read_timeout_seconds=CALL_TIMEOUT_S) as client:
        listed = await client.list_tools()
    tools = [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in listed.tools]
    largest = max(tools, key=size)
    return {
        "tools": len(tools),
        "total": size({"tools": tools}),
        "model": sum(size({k: t[k] for k in ("name", "description", "inputSchema") if k in t}) for t in tools),
        "largest": (largest["name"], size(largest)),
    }


def print_lists(lists: dict[str, dict[str, Any]]) -> None:
    print("(a) tools/list, characters of compact JSON")
    head = f"{'':<22}{'tools':>6}{'total':>9}{'model reads':>13}  largest tool"
    print(head)
    print("-" * (len(head) + 12))
    rows = [("before (every role)", BEFORE)] + [(f"now: {role}", figures) for role, figures in lists.items()]
    for label, f in rows:
        name, chars = f["largest"]
        print(f"{label:<22}{f['tools']:>6}{f['total']:>9,}{f['model']:>13,}  {name} ({chars:,})")
    print()


async def round_trips(db: str, n: int) -> dict[str, list[float]]:
    async with (
        Client(noop_params(), read_timeout_seconds=CALL_TIMEOUT_S) as noop,
        AgentClient(serve_params(db=db, name="alice"), read_timeout_s=CALL_TIMEOUT_S) as alice,
    ):
        await alice.call("whoami")
        async with AgentClient(
            serve_params(db=db, name="bob", role="worker", parent="alice"), read_timeout_s=CALL_TIMEOUT_S
        ) as bob:
            await bob.call("whoami")
            for i in range(40):
                await alice.call("mail_send", to="bob", subject=f"note {i}", body=BODY)
            await bob.call("mail_inbox", limit=500)  # all seen: each timed read returns the same 20
            series: dict[str, list[float]] = {"noop": [], "mail_inbox": [], "whoami": [], "mail_send": []}
            warmup = max(20, n // 10)
            for i in range(warmup + n):
                t0 = time.perf_counter()
                await noop.call_tool("noop", {})
                t1 = time.perf_counter()
                inbox = await bob.call("mail_inbox", limit=20, unread_only=False)
                t2 = time.perf_counter()
                await alice.call("whoami")
                t3 = time.perf_counter()
                await alice.call("mail_send", to="alice", body=f"rt {i}")
                t4 = time.perf_counter()
                assert len(inbox["messages"]) == 20 and all(len(m["body"]) == 400 for m in inbox["messages"])
                if i % 50 == 49:
                    await alice.call("mail_inbox", limit=500)  # keep alice's own inbox small
                if i >= warmup:
                    series["noop"].append(t1 - t0)
                    series["mail_inbox"].append(t2 - t1)
                    series["whoami"].append(t3 - t2)
                    series["mail_send"].append(t4 - t3)
    return series


async def main(args: argparse.Namespace) -> int:
    print(f"bench/surface.py: maestro from {Path(sys.modules['maestro_mcp'].__file__ or '').parent}\n", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        lists = {
            role: await tool_list(str(Path(tmp) / role / ".maestro" / "maestro.db"), role)
            for role in ("worker", "coordinator")
        }
        print_lists(lists)
        series = await round_trips(str(Path(tmp) / "rt" / ".maestro" / "maestro.db"), args.round_trips)
    table = Table(f"(b) round trips over stdio ({args.round_trips} each, interleaved)")
    stats = {name: table.add(name, samples) for name, samples in series.items()}
    print(table.render())
    print()
    base = stats["noop"]["p50"]
    for name, target in (("mail_inbox", 2.0), ("whoami", 1.25), ("mail_send", 2.5)):
        mean = stats[name]["mean"] / stats["noop"]["mean"]
        print(f"{name + ' / no-op':<22} p50 {verdict(stats[name]['p50'] / base, target)}  mean {mean:.2f}x")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--round-trips", type=int, default=400, help="round trips per kind")
    sys.exit(anyio.run(main, parser.parse_args()))
