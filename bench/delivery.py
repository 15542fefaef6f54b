"""The last metre, measured with the REAL agent CLIs against the scripted model (tests/cli/fake_model.py).

    python bench/delivery.py [--cli claude,codex,gemini] [--calls 30] [--mails 5] [--approvals 8]

(a) Hook overhead per tool call: the time between a worker's consecutive model requests while it makes
    tool calls (nothing to deliver), with maestro's delivery and permission wiring and without it
    (the same CLI, the same tool calls, no maestro hooks). The model answers at once, so the gap is the
    CLI's own work plus whatever its hooks add.
(b) Delivery: from a critical `mail_send` to its text appearing in a busy worker's model request, in
    time and in model requests after the send.
(c) Approvals: from `approval_decide` returning to the worker's tool having run (the file it touches).

Each worker is planned by its adapter exactly as spawn_worker plans it, in a throw-away project, and the
bench itself plays its coordinator on the same store.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "cli"))

from _common import percentile  # noqa: E402
from agent_clis import find_cli, make_sandbox  # noqa: E402
from fake_model import FakeModel, ScriptStep  # noqa: E402

from maestro_mcp import adapters  # noqa: E402
from maestro_mcp.adapters import FileWrite  # noqa: E402
from maestro_mcp.adapters.base import hook_socket_path  # noqa: E402
from maestro_mcp.launch.spawner import write_files  # noqa: E402
from maestro_mcp.models import ApprovalStatus, Priority, Role, SessionRecord, SessionStatus  # noqa: E402
from maestro_mcp.policy import load_policy  # noqa: E402
from maestro_mcp.service import Services  # noqa: E402
from maestro_mcp.store import create_store  # noqa: E402

MODEL = {"claude": None, "codex": "gpt-5.1-codex", "gemini": "gemini-2.5-pro"}
POLICY = '[default]\nallow = ["run:sleep", "run:cat", "run:echo"]\n'
RUN_S = 300
T = TypeVar("T")


def shell(cli: str, command: str) -> ScriptStep:
    if cli == "claude":
        return ("Bash", {"command": command, "description": "bench"})
    if cli == "codex":
        return ("exec_command", {"cmd": command})
    return ("run_shell_command", {"command": command})


def read(cli: str, n: int) -> ScriptStep:
    """Read a different file each time: Gemini stops an agent that repeats one call as looping."""
    if cli == "claude":
        return ("Read", {"file_path": f"notes-{n}.txt"})
    if cli == "codex":
        return ("exec_command", {"cmd": f"cat notes-{n}.txt"})
    return ("read_file", {"file_path": f"notes-{n}.txt"})


@dataclass
class Worker:
    process: Any
    session: SessionRecord
    log: Path


class Rig:
    """A throw-away project: its store, a coordinator session (the bench), and one CLI worker at a time."""

    def __init__(self, root: Path, fm: FakeModel, cli: str) -> None:
        self.cli = cli
        self.box = make_sandbox(root, fm.base_url, (cli,))
        (self.box.project / ".maestro").mkdir(exist_ok=True)
        (self.box.project / ".maestro" / "policy.toml").write_text(POLICY)
        for n in range(200):
            (self.box.project / f"notes-{n}.txt").write_text(f"notes {n}\n")
        self.store = create_store(self.box.db)
        self.svc = Services.create(self.store)
        self.count = 0

    async def __aenter__(self) -> Rig:
        await self.store.open()
        self.lead = (await self.svc.sessions.register(name="lead", role=Role.coordinator, agent="bench")).session
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.store.close()

    @contextlib.asynccontextmanager
    async def worker(self, *, wired: bool = True) -> AsyncIterator[Worker]:
        """Start the CLI as a headless worker (with maestro's hooks and policy, or without) and wait for its end."""
        self.count += 1
        root = self.box.project
        registered = await self.svc.sessions.register(
            name=f"w{self.count}", role=Role.worker, agent=self.cli, parent="lead", workspace=str(root),
            status=SessionStatus.spawning, profile="dev",
        )  # fmt: skip
        session = registered.session
        adapter = adapters.load(self.cli, root)
        plan = adapters.build_plan(
            adapters.LaunchRequest(
                definition=adapter.definition, session_id=session.id, token=registered.token, name=session.name,
                manifest="Do the busy work.", workspace=root, project_root=root, db=self.box.db,
                base_env=self.box.env, model=MODEL[self.cli],
                rules=load_policy(root).for_profile("dev") if wired else None,
                hook_socket=hook_socket_path(root, session.id) if wired else "",
            ),
            adapter,
        )  # fmt: skip
        files = plan.files if wired else [_without_hooks(f) for f in plan.files]
        write_files(files, root)
        log = Path(plan.log_path)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:  # noqa: ASYNC230 - a local log file
            binary = find_cli(self.cli) or plan.argv[0]
            process = await anyio.open_process(
                [binary, *plan.argv[1:]], env=plan.env, cwd=plan.cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            yield Worker(process, session, log)
            with anyio.fail_after(RUN_S):
                await process.wait()
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
                await process.wait()


async def probe(found: Callable[[], T], every_s: float = 0.005) -> T:
    """Look until `found()` is truthy: a benchmark's probe of something with no wake-up of its own (the
    fake model's request log, a file the worker's tool makes), not a test's synchronisation."""
    while not (value := found()):  # noqa: ASYNC110 - nothing to wait on but the thing itself
        await anyio.sleep(every_s)
    return value


def _without_hooks(f: FileWrite) -> FileWrite:
    """The baseline runs the CLI with maestro's server but none of its hooks (Gemini's live in its settings)."""
    if not f.path.endswith(".json"):
        return f
    data = json.loads(f.content)
    data.pop("hooks", None)
    return dataclasses.replace(f, content=json.dumps(data))


def gaps(fm: FakeModel, skip: int = 1) -> list[float]:
    """Seconds between consecutive agent turns (the first `skip` turns, start-up, left out)."""
    turns = fm.agent_turns()
    return [b.at - a.at for a, b in zip(turns[skip:], turns[skip + 1 :], strict=False)]


def stats(label: str, values: Sequence[float], unit: float = 1000.0, suffix: str = "ms") -> str:
    if not values:
        return f"{label:<44} no samples"
    return (
        f"{label:<44} n={len(values):<4} p50 {percentile(values, 50) * unit:8.1f} {suffix}"
        f"   p99 {percentile(values, 99) * unit:8.1f} {suffix}   mean {statistics.fmean(values) * unit:8.1f} {suffix}"
    )


async def overhead(cli: str, calls: int) -> None:
    results: dict[bool, list[float]] = {}
    for wired in (False, True, False, True):  # interleaved, so machine load hits both alike
        with tempfile.TemporaryDirectory() as tmp, FakeModel([read(cli, n) for n in range(calls)]) as fm:
            async with Rig(Path(tmp), fm, cli) as rig, rig.worker(wired=wired):
                pass
            results.setdefault(wired, []).extend(gaps(fm))
    bare, hooked = results[False], results[True]
    print(stats(f"(a) {cli}: gap between tool calls, no maestro hooks", bare))
    print(stats(f"(a) {cli}: gap between tool calls, maestro wired", hooked))
    p50 = (percentile(hooked, 50) - percentile(bare, 50)) * 1000
    p99 = (percentile(hooked, 99) - percentile(bare, 99)) * 1000
    ratio = percentile(hooked, 50) / percentile(bare, 50)
    print(
        f"(a) {cli}: added per tool call: p50 {p50:+.1f} ms, p99 {p99:+.1f} ms (p50 ratio {ratio:.2f}x; target +30 ms)"
    )


async def delivery(cli: str, mails: int) -> None:
    steps = [shell(cli, f"sleep 0.2 && echo step {n}") for n in range(mails * 6 + 4)]
    times: list[float] = []
    requests: list[int] = []
    with tempfile.TemporaryDirectory() as tmp, FakeModel(steps) as fm:
        async with Rig(Path(tmp), fm, cli) as rig, rig.worker() as worker:
            for n in range(mails):
                at_turn = 3 + n * 6
                await anyio.to_thread.run_sync(fm.wait_turns, at_turn, RUN_S)
                marker = f"BENCH-MAIL-{n}-{os.getpid()}"
                sent_at = time.monotonic()
                before = len(fm.agent_turns())
                await rig.svc.mail.send(rig.lead, worker.session.id, marker, priority=Priority.critical)
                with anyio.fail_after(60):
                    seen = await probe(lambda m=marker: [i for i, t in enumerate(fm.agent_turns()) if m in str(t.body)])
                turn = fm.agent_turns()[seen[0]]
                times.append(turn.at - sent_at)
                requests.append(seen[0] + 1 - before)
    print(stats(f"(b) {cli}: critical mail_send -> text in a model request", times))
    print(f"(b) {cli}: model requests after the send until it: {requests} (1 = the very next one)")


async def approvals(cli: str, count: int) -> None:
    steps = [shell(cli, f"touch relay-{i}") for i in range(count)]
    waits: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, FakeModel(steps) as fm:
        async with Rig(Path(tmp), fm, cli) as rig, rig.worker(), rig.store.subscribe("approvals") as bell:
            decided = 0
            while decided < count:
                pending = await rig.store.list_approvals(status=ApprovalStatus.pending)
                if not pending:
                    await bell.wait(1.0)
                    continue
                request = pending[0]
                target = rig.box.project / request.input.split()[-1]
                await rig.svc.approvals.decide(rig.lead, request.id, True, "bench")
                decided_at = time.monotonic()
                with anyio.fail_after(30):
                    await probe(target.exists, 0.0005)
                waits.append(time.monotonic() - decided_at)
                decided += 1
    print(stats(f"(c) {cli}: approval_decide -> the worker's tool has run", waits))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cli", default="claude,codex,gemini")
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--mails", type=int, default=5)
    parser.add_argument("--approvals", type=int, default=8)
    args = parser.parse_args()
    for cli in args.cli.split(","):
        if find_cli(cli) is None:
            print(f"{cli}: not installed (make clis); skipped")
            continue
        print(f"=== {cli} ===")
        await overhead(cli, args.calls)
        await delivery(cli, args.mails)
        await approvals(cli, args.approvals)


if __name__ == "__main__":
    anyio.run(main)
