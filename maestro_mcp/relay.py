"""The relay: runs a headless agent CLI, keeps its raw log, and records what it does in the store.

    python -m maestro_mcp.relay --cli claude --root PROJECT --log .maestro/logs/w.log -- claude -p ...

The spawner starts this in place of the CLI (`launch.spawner.command_of`). The relay starts the CLI as
its child in the same process group (so stopping the worker stops both), writes every line the CLI
prints to the log, parses the CLI's structured events into activity (`activity.Parser`), redacts them,
and records them in batches: at most every FLUSH_S, one transaction per batch. It enforces what the CLI
cannot (a budget, a turn limit), tells the coordinator of a stall, and exits as the CLI did.

It never makes a worker fail: a store that cannot be reached, or output that is not JSON, costs
activity (counted as lost or skipped), never the worker or its log.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.abc

from maestro_mcp import adapters, ids, project_config
from maestro_mcp.activity import Activity, Kind, Parser, Redactor, short
from maestro_mcp.config import settings
from maestro_mcp.errors import MaestroError
from maestro_mcp.launch.spawner import open_log, pid_alive, process_tree
from maestro_mcp.models import ActivityBatch, NewActivity, SessionRecord, SessionStatus, Usage, now
from maestro_mcp.pricing import PriceTable
from maestro_mcp.service import Services
from maestro_mcp.store import create_store

FLUSH_S = 0.05
BATCH_MAX = 500
PENDING_MAX = 20_000
LINE_MAX = 8 * 1024 * 1024
STOP_GRACE_S = 5.0
BACKPRESSURE_S = 1.0
RETRY_S = 1.0


@dataclass
class Collector:
    """Activity parsed but not yet recorded. Bounded: beyond PENDING_MAX events, new ones are counted as
    lost (usage is never lost: it is summed, not queued)."""

    session_id: str
    relay: str
    window: int
    events: list[NewActivity] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    doing: str | None = None
    active_at: float | None = None
    conversation_id: str | None = None
    model: str | None = None
    skipped: int = 0
    lost: int = 0
    batch: int = 0
    limit_hit: str = ""
    """The CLI stopped itself at a limit maestro gave it (Claude's --max-budget-usd, --max-turns)."""

    def add(self, a: Activity, usage: Usage) -> None:
        at = now()
        if a.kind is Kind.start:
            self.conversation_id = a.conversation_id or self.conversation_id
            self.model = a.model or self.model
        if a.kind in (Kind.turn, Kind.tool_call):
            self.active_at = at
        if a.kind is Kind.tool_call:
            self.doing = a.summary
        if a.extra.get("limit"):
            self.limit_hit = str(a.extra["limit"])
        self.usage = self.usage + usage
        if a.kind is Kind.usage and not a.summary:
            return  # a usage increment is kept in the totals, not as an event of its own
        if len(self.events) >= PENDING_MAX:
            self.lost += 1
            return
        self.events.append(NewActivity(at=at, kind=a.kind, summary=a.summary, tool=a.tool, ok=a.ok))

    @property
    def waiting(self) -> bool:
        return bool(self.events) or not self.usage.empty or self.skipped > 0 or self.lost > 0

    def take(self) -> ActivityBatch:
        self.batch += 1
        batch = ActivityBatch(
            session_id=self.session_id,
            relay=self.relay,
            batch=self.batch,
            events=self.events[:BATCH_MAX],
            usage=self.usage,
            doing=self.doing,
            active_at=self.active_at,
            conversation_id=self.conversation_id,
            model=self.model,
            skipped=self.skipped,
            lost=self.lost,
            window=self.window,
        )
        self.events = self.events[BATCH_MAX:]
        self.usage, self.doing, self.active_at, self.skipped, self.lost = Usage(), None, None, 0, 0
        self.conversation_id = self.model = None
        return batch

    def give_back(self, batch: ActivityBatch) -> None:
        """A batch that could not be recorded goes back in front, merged, under a new number."""
        waiting = batch.events + self.events
        self.lost += max(0, len(waiting) - PENDING_MAX)
        self.events = waiting[:PENDING_MAX]
        self.usage = batch.usage + self.usage
        self.doing = self.doing or batch.doing
        self.active_at = self.active_at or batch.active_at
        self.conversation_id = self.conversation_id or batch.conversation_id
        self.model = self.model or batch.model
        self.skipped += batch.skipped
        self.lost += batch.lost


class Relay:
    def __init__(self, cli: str, root: Path, log: BinaryIO, argv: list[str], session_id: str, db: str) -> None:
        self.cli = cli
        self.root = root
        self.log = log
        self.argv = argv
        self.session_id = session_id
        self.db = db
        self.adapter = adapters.load(cli, root)
        self.parser: Parser | None = self.adapter.output_parser()
        self.redact = Redactor(os.environ)
        self.prices = PriceTable.load(root)
        self.defaults = project_config.load(root)
        self.collector = Collector(session_id, ids.new_id("r"), self.defaults.activity_window)
        self.wake = anyio.Event()
        self.process: anyio.abc.Process | None = None
        self.stop_reason = ""
        self.flush_lock = anyio.Lock()
        self.launch_model = ""
        self.killer: anyio.abc.TaskGroup | None = None
        self.recording = False
        """The last batch was recorded: the store keeps up, so a burst of output may wait for it."""
        self.drained = anyio.Event()

    def note(self, text: str) -> None:
        """A line of the relay's own in the worker's log, where whoever reads the log looks."""
        self.log.write(f"maestro relay: {text}\n".encode())
        self.log.flush()

    # -- the CLI's output ---------------------------------------------------------------------------------
    def line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace")
        self.log.write(self.redact(text).encode())
        self.log.flush()
        if self.parser is None:
            return
        skipped = self.parser.skipped
        for a in self.parser.feed(text):
            a.summary = self.redact(a.summary)
            self.collector.add(a, self.usage_of(a))
        self.collector.skipped += self.parser.skipped - skipped
        self.wake.set()

    def usage_of(self, a: Activity) -> Usage:
        if not (a.input_tokens or a.output_tokens or a.cached_tokens or a.turns or a.cost_usd):
            return Usage()
        cost, estimated = a.cost_usd, False
        if cost is None:
            model = a.model or self.collector.model or self.launch_model
            cost = self.prices.estimate(model, a.input_tokens, a.output_tokens, a.cached_tokens)
            estimated = cost > 0
        return Usage(
            input_tokens=a.input_tokens,
            output_tokens=a.output_tokens,
            cached_tokens=a.cached_tokens,
            turns=a.turns,
            cost_usd=cost,
            cost_estimated=estimated,
        )

    async def read(self, stream: anyio.abc.ByteReceiveStream) -> None:
        buffer = b""
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            async for chunk in stream:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    self.line(raw + b"\n")
                if len(self.collector.events) >= PENDING_MAX // 2 and self.recording:
                    # Hold the CLI's output (its pipe fills, it waits) rather than lose events, while the
                    # store keeps up; an unreachable store never holds the worker (events are counted lost).
                    self.drained = anyio.Event()
                    with anyio.move_on_after(BACKPRESSURE_S):
                        await self.drained.wait()
                if len(buffer) > LINE_MAX:  # a line without end: keep it in the log, not in memory
                    self.log.write(self.redact(buffer.decode("utf-8", errors="replace")).encode())
                    buffer = b""
                    self.collector.skipped += 1
        if buffer:
            self.line(buffer)

    # -- recording ----------------------------------------------------------------------------------------
    async def flush(self, services: Services, me: SessionRecord) -> None:
        async with self.flush_lock:
            while self.collector.waiting:
                batch = self.collector.take()
                try:
                    stats = await services.store.record_activity(batch)
                except (MaestroError, OSError) as exc:
                    self.recording = False
                    self.collector.give_back(batch)
                    self.note(f"could not record activity ({exc}); retrying")
                    raise
                self.recording = True
                self.drained.set()
                verdict = await services.activity.after_record(me, stats, native_turns=self.adapter.native_turns)
                if verdict.action == "stop" and not self.stop_reason:
                    self.stop_reason = verdict.reason
                    self.terminate()

    async def recorder(self, services: Services, me: SessionRecord) -> None:
        while True:
            await self.wake.wait()
            self.wake = anyio.Event()
            try:
                await self.flush(services, me)
            except (MaestroError, OSError):
                await anyio.sleep(RETRY_S)  # the store is unreachable: back off, keep the events
                self.wake.set()
                continue
            await anyio.sleep(FLUSH_S)  # gather the next lines into one batch (a rate, not a wait for a state)

    async def watch_silence(self, services: Services, me: SessionRecord) -> None:
        stall = self.defaults.stall_after_s
        every = max(0.05, min(30.0, stall / 4))
        while True:
            await anyio.sleep(every)
            with contextlib.suppress(MaestroError, OSError):
                await services.activity.check_silence(me, stall)

    # -- the child ----------------------------------------------------------------------------------------
    def terminate(self) -> None:
        """Stop the CLI and what it started: SIGTERM, then SIGKILL after STOP_GRACE_S."""
        if self.process is None or self.killer is None:
            return
        for pid in process_tree(self.process.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        self.killer.start_soon(self._kill_later, self.process.pid)

    async def _kill_later(self, pid: int) -> None:
        await anyio.sleep(STOP_GRACE_S)
        for other in process_tree(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(other, signal.SIGKILL)

    async def run(self) -> int:
        store = create_store(self.db)
        try:
            await store.open()
            me = await store.get_session(self.session_id)
            if me is None:
                raise MaestroError(f"No session {self.session_id} in {store.location}.")
        except (MaestroError, OSError) as exc:
            # The worker runs anyway: its output is kept in the raw log, and only its activity is missing.
            self.note(f"could not record activity ({exc}); the raw log is all there is")
            with anyio.CancelScope(shield=True), contextlib.suppress(MaestroError, OSError):
                await store.close()
            return await self._run(None, None)
        try:
            services = Services.create(store)
            stats = (await store.session_stats([me.id])).get(me.id)
            self.launch_model = str((stats.launch if stats else {}).get("model") or "")
            return await self._run(services, me)
        finally:
            with anyio.CancelScope(shield=True):
                await store.close()

    async def _run(self, services: Services | None, me: SessionRecord | None) -> int:
        async with anyio.create_task_group() as tg:
            self.killer = tg
            process = await anyio.open_process(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log, env=os.environ.copy()
            )
            self.process = process
            tg.start_soon(self.forward_signals, process)
            if services is not None and me is not None:
                tg.start_soon(self.recorder, services, me)
                tg.start_soon(self.watch_silence, services, me)
            assert process.stdout is not None
            await self.read(process.stdout)
            code = await process.wait()
            self.collector.add(Activity(Kind.exit, summary=exit_summary(code, self.stop_reason)), Usage())
            self.collector.doing = f"exited ({describe_code(code)})"
            if services is not None and me is not None:
                with anyio.move_on_after(10, shield=True), contextlib.suppress(MaestroError, OSError):
                    await self.flush(services, me)
            tg.cancel_scope.cancel()
        if services is not None and me is not None:
            with anyio.CancelScope(shield=True), contextlib.suppress(MaestroError, OSError):
                await self.end(services, me, code)
        return code

    async def end(self, services: Services, me: SessionRecord, code: int) -> None:
        """End the session here when the relay knows why (a limit), or when nobody else will (its spawner
        is gone); otherwise the spawner hears the exit and ends it."""
        reason = self.stop_reason
        if not reason and self.collector.limit_hit:
            reason = f"It stopped at its {self.collector.limit_hit}."
        current = await services.store.get_session(me.id)
        if current is None or not current.live:
            return
        if reason:
            await services.sessions.end(current, SessionStatus.stopped, code, reason)
        elif current.spawner_pid is not None and not pid_alive(current.spawner_pid):
            status = SessionStatus.exited if code == 0 else SessionStatus.failed
            await services.sessions.end(current, status, code, "Its spawner had gone; the relay saw it exit.")

    async def forward_signals(self, process: anyio.abc.Process) -> None:
        """SIGTERM, SIGINT or SIGHUP to the relay go to the CLI; the relay then drains its output and exits
        as the CLI did."""
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signum)


def describe_code(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 and -code in signal.valid_signals() else f"code {code}"


def exit_summary(code: int, reason: str) -> str:
    return short(f"exited with {describe_code(code)}" + (f": {reason}" if reason else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maestro_mcp.relay", description=__doc__)
    parser.add_argument("--cli", required=True, help="The adapter: claude, codex, gemini, script.")
    parser.add_argument("--root", required=True, type=Path, help="The project.")
    parser.add_argument("--log", required=True, type=Path, help="The raw log, appended to.")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the CLI's argv")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the CLI's argv after --")
    config = settings()
    if not config.db or not config.session:
        parser.error("MAESTRO_DB and MAESTRO_SESSION must be set (the spawner sets them)")
    with open_log(args.log, args.root) as log:
        relay = Relay(args.cli, args.root, log, command, config.session, config.db)
        code = anyio.run(relay.run)
    if code < 0:
        # Exit as the CLI did: by the same signal, so that whoever waits on us sees what happened to it.
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # their handling cannot be changed
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main())
