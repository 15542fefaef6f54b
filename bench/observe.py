"""What watching a worker costs: the relay's CPU, the store's size, and how soon `maestro logs -f` shows an event.

    .venv/bin/python bench/observe.py [--events 10000] [--chatty 100000] [--paced 300]

1. CPU (user + system) of `python -m maestro_mcp.relay` parsing, redacting and storing N events of a
   fake Claude CLI (tests/relay/fake_cli.py), against the baseline measured in the same run: a plain
   copier that writes the same output to the raw log and does nothing else. Both times exclude the CLI.
2. The SQLite store's size after a worker's 100,000 events (its window keeps about 2,000).
3. From the CLI printing an event line to `maestro logs -f` printing it, p50 and p99.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import Table

from maestro_mcp.ids import new_id
from maestro_mcp.models import Role, SessionRecord, SessionStatus, now
from maestro_mcp.store import create_store

REPO = Path(__file__).resolve().parents[1]
FAKE = str(REPO / "tests" / "relay" / "fake_cli.py")
# The baseline: the CLI's output copied to the raw log line by line, as a relay without a store would.
COPIER = "import sys\nlog = open(sys.argv[1], 'ab')\nfor line in sys.stdin.buffer:\n    log.write(line)\n"


async def project(root: Path) -> tuple[str, str]:
    """A store with a worker session in it: (db, session id)."""
    (root / ".maestro").mkdir(parents=True)
    db = str(root / ".maestro" / "maestro.db")
    store = create_store(db)
    await store.open()
    ts = now()
    worker = SessionRecord(
        id=new_id("s"), name="w", role=Role.worker, agent="claude", parent_id=None, status=SessionStatus.working,
        workspace=None, pid=None, created_at=ts, last_seen_at=ts,
    )  # fmt: skip
    await store.create_session(worker)
    await store.close()
    return db, worker.id


def relay_argv(root: Path, *cli: str) -> list[str]:
    log = str(root / ".maestro" / "logs" / "w.log")
    return [sys.executable, "-m", "maestro_mcp.relay", "--cli", "claude", "--root", str(root), "--log", log, "--", *cli]


def cpu_of(argv: list[str], env: dict[str, str], stdin: int | None = None) -> tuple[float, float]:
    """(CPU seconds of the process itself, wall seconds); children's CPU is measured apart and excluded."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdin=stdin, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv[:4]} exited with {process.returncode}")
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - start


def cli_cpu(n: int) -> float:
    """CPU of the fake CLI alone printing n events (subtracted from the relay's children)."""
    process = subprocess.Popen([sys.executable, FAKE, "chatty", str(n)], stdout=subprocess.DEVNULL)
    _, _, usage = os.wait4(process.pid, 0)
    return usage.ru_utime + usage.ru_stime


def relay_cpu(root: Path, db: str, sid: str, n: int) -> tuple[float, float]:
    env = {**os.environ, "MAESTRO_DB": db, "MAESTRO_SESSION": sid}
    own, wall = cpu_of(relay_argv(root, sys.executable, FAKE, "chatty", str(n)), env)
    # wait4's figures for the relay include its child (the CLI): take the CLI's own cost out.
    return own - cli_cpu(n), wall


def copier_cpu(root: Path, n: int) -> tuple[float, float]:
    log = root / "raw.log"
    cli = subprocess.Popen([sys.executable, FAKE, "chatty", str(n)], stdout=subprocess.PIPE)
    assert cli.stdout is not None
    own, wall = cpu_of([sys.executable, "-c", COPIER, str(log)], dict(os.environ), stdin=cli.stdout.fileno())
    cli.wait()
    return own, wall


def store_size(db: str) -> int:
    return sum(Path(p).stat().st_size for p in (db, db + "-wal") if Path(p).exists())


async def follow_delays(root: Path, db: str, sid: str, n: int) -> list[float]:
    env = {**os.environ, "MAESTRO_DB": db, "MAESTRO_SESSION": sid}
    delays: list[float] = []
    follow = await anyio.open_process([sys.executable, "-m", "maestro_mcp", "logs", sid, "-f", "-n", "0"], env=env)
    assert follow.stdout is not None
    buffer = b""
    with anyio.fail_after(60):
        while b"\n" not in buffer:  # its header: it is following now
            buffer += await follow.stdout.receive()
    buffer = buffer.split(b"\n", 1)[1]
    relay = await anyio.open_process(relay_argv(root, sys.executable, FAKE, "paced", str(n)), env=env)
    with anyio.fail_after(120):
        async for chunk in follow.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                text = line.decode(errors="replace")
                if " at " in text and "running step" in text:
                    delays.append(time.time() - float(text.rsplit(" at ", 1)[1].split()[0]))
            if len(delays) >= n:
                break
    await relay.wait()
    follow.terminate()
    await follow.wait()
    return delays


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--chatty", type=int, default=100_000)
    parser.add_argument("--paced", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        db, sid = await project(base / "cpu")
        copier, copier_wall = copier_cpu(base / "cpu", args.events)
        relay, relay_wall = relay_cpu(base / "cpu", db, sid, args.events)
        print(f"CPU for {args.events:,} events (the CLI's own CPU excluded)")
        print(f"  raw log only (baseline)       {copier * 1000:8.1f} ms   wall {copier_wall * 1000:8.1f} ms")
        print(f"  relay: parse, redact, store   {relay * 1000:8.1f} ms   wall {relay_wall * 1000:8.1f} ms")
        print(f"  ratio {relay / copier:.1f}x; {relay / args.events * 1e6:.0f} µs of CPU per event")

        db2, sid2 = await project(base / "size")
        empty = store_size(db2)
        _, wall = cpu_of(relay_argv(base / "size", sys.executable, FAKE, "chatty", str(args.chatty)),
                         {**os.environ, "MAESTRO_DB": db2, "MAESTRO_SESSION": sid2})  # fmt: skip
        store = create_store(db2)
        await store.open()
        stats = (await store.session_stats([sid2]))[sid2]
        kept = len(await store.activity(sid2, limit=1_000_000))
        await store.close()
        size = store_size(db2)
        print(f"\nStore after {args.chatty:,} events from one worker ({wall:.1f} s to record)")
        print(
            f"  recorded {stats.events:,}, lost {stats.lost:,}, kept in the window {kept:,}, dropped {stats.dropped:,}"
        )
        print(f"  store {size / 1024:.0f} KiB (empty store {empty / 1024:.0f} KiB); raw log "
              f"{(base / 'size' / '.maestro' / 'logs' / 'w.log').stat().st_size / 1024 / 1024:.1f} MiB")  # fmt: skip

        db3, sid3 = await project(base / "follow")
        delays = await follow_delays(base / "follow", db3, sid3, args.paced)
        table = Table(f"\nCLI prints an event -> `maestro logs -f` prints it ({len(delays)} events, 10 ms apart)")
        table.add("event line -> logs -f", delays)
        print(table.render())


if __name__ == "__main__":
    anyio.run(main)
