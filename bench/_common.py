"""Helpers shared by the benchmarks: the baseline server, percentiles, and a plain-text table."""

from __future__ import annotations

import math
import os
import secrets
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from mcp.client.stdio import StdioServerParameters

HERE = Path(__file__).resolve().parent


def noop_params() -> StdioServerParameters:
    """The baseline: a bare MCP SDK server (bench/noop_server.py) with a no-op tool, over stdio."""
    return StdioServerParameters(command=sys.executable, args=[str(HERE / "noop_server.py")])


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f}"


class Table:
    """Rows of p50/p90/p99 in milliseconds, with a ratio column against a named baseline row."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: list[tuple[str, int, float, float, float, float, str]] = []

    def add(self, name: str, samples: Sequence[float], note: str = "") -> dict[str, float]:
        stats = {
            "p50": percentile(samples, 50),
            "p90": percentile(samples, 90),
            "p99": percentile(samples, 99),
            "mean": statistics.fmean(samples),
        }
        self.rows.append((name, len(samples), stats["p50"], stats["p90"], stats["p99"], stats["mean"], note))
        return stats

    def render(self) -> str:
        width = max(len(r[0]) for r in self.rows)
        head = f"{'':<{width}}  {'n':>6}  {'p50 ms':>8}  {'p90 ms':>8}  {'p99 ms':>8}  {'mean ms':>8}"
        lines = [self.title, head, "-" * len(head)]
        for name, n, p50, p90, p99, mean, note in self.rows:
            line = f"{name:<{width}}  {n:>6}  {ms(p50)}  {ms(p90)}  {ms(p99)}  {ms(mean)}"
            lines.append(f"{line}  {note}" if note else line)
        return "\n".join(lines)


def verdict(value: float, target: float, unit: str = "x") -> str:
    """'1.12x (target <= 1.25x: met)'."""
    ok = "met" if value <= target else "MISSED"
    return f"{value:.2f}{unit} (target <= {target:g}{unit}: {ok})"


def side_by_side(
    results: dict[str, dict[str, Any]], rows: Sequence[tuple[str, Callable[[dict[str, Any]], str]]]
) -> None:
    """One column per backend, one row per figure, when a run covered more than one backend."""
    if len(results) < 2:
        return
    print("Side by side")
    print(f"{'':<34}" + "".join(f"{b:>14}" for b in results))
    for label, cell in rows:
        print(f"{label:<34}" + "".join(f"{cell(r):>14}" for r in results.values()))


# -- backends ------------------------------------------------------------------------------------------------
BACKENDS = ("sqlite", "postgresql")
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def pg_base() -> str:
    """The PostgreSQL server the benchmarks use (MAESTRO_BENCH_PG, else MAESTRO_TEST_PG, else local `test`)."""
    return os.environ.get("MAESTRO_BENCH_PG") or os.environ.get("MAESTRO_TEST_PG") or PG_DEFAULT


def backends(choice: str) -> list[str]:
    return list(BACKENDS) if choice == "both" else [choice]


def location(backend: str, tmp: Path, name: str) -> str:
    """A fresh store for one benchmark part: a SQLite file under `tmp`, or a new PostgreSQL schema."""
    if backend == "sqlite":
        return str(tmp / name / ".maestro" / "maestro.db")
    schema = f"bench_{name}_{secrets.token_hex(4)}".replace("-", "_")
    parts = urlsplit(pg_base())
    query = [*parse_qsl(parts.query), ("schema", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def drop_location(loc: str) -> None:
    """Remove a benchmark's PostgreSQL schema (SQLite files stay with their temp directory)."""
    schema = dict(parse_qsl(urlsplit(loc).query)).get("schema")
    if not loc.startswith("postgresql://") or not schema:
        return
    conn = await asyncpg.connect(pg_base())
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def pg_value(sql: str) -> Any:
    """One value from the benchmarks' PostgreSQL server (outside any store, e.g. from pg_stat_activity)."""
    conn = await asyncpg.connect(pg_base())
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def raw_sqlite_commits(tmp: Path, seconds: float = 3.0) -> float:
    """Single-row commits a second on a fresh SQLite file, as the store opens it (WAL, synchronous=NORMAL)."""
    path = tmp / f"raw-{secrets.token_hex(4)}.db"
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    n = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (body) VALUES (?)", (f"m{n}",))
        conn.execute("COMMIT")
        n += 1
    elapsed = time.perf_counter() - began
    conn.close()
    return n / elapsed
