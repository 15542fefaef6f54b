"""What workers do and spend: budgets, stalls, and the figures `status`, `watch` and `whoami` show.

A worker's relay (maestro_mcp/relay.py) records its activity; this service decides what follows: a
warning to the coordinator at 80% of a budget, a stop when the budget or the turn limit is reached, one
`event` when a worker falls silent, and one to the workers and the operator when their coordinator has
ended or fallen silent. Each of these is claimed by compare-and-set in the store, so when several
processes notice the same thing, the coordinator hears of it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from maestro_mcp.models import Priority, Role, SessionRecord, SessionStats, Usage, now
from maestro_mcp.store import Store

from .mail import MailService, coordinator_of
from .sessions import operator_session

WARN_AT = 0.8


@dataclass(frozen=True)
class Verdict:
    action: Literal["go", "stop"]
    reason: str = ""


GO = Verdict("go")


def money(usage: Usage) -> str:
    """`$0.42`, or `~$0.42` when priced from the price table (an estimate)."""
    if not usage.cost_usd and not usage.cost_estimated and not usage.input_tokens:
        return "-"
    return f"{'~' if usage.cost_estimated else ''}${usage.cost_usd:.2f}"


def tokens(usage: Usage) -> str:
    return f"{usage.input_tokens:,} in ({usage.cached_tokens:,} cached), {usage.output_tokens:,} out"


def ago(ts: float | None, at: float | None = None) -> str:
    if ts is None:
        return ""
    s = max(0, int((at or now()) - ts))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class ActivityService:
    def __init__(self, store: Store, mail: MailService) -> None:
        self.store = store
        self.mail = mail

    async def stats(self, session_ids: Sequence[str] | None = None) -> dict[str, SessionStats]:
        return await self.store.session_stats(session_ids)

    # -- budgets ----------------------------------------------------------------------------------------------
    async def after_record(self, worker: SessionRecord, stats: SessionStats, *, native_turns: bool) -> Verdict:
        """What a relay does after recording: go on, or stop the worker (with the reason). Warns the
        coordinator once at 80% of the budget. `native_turns`: the CLI enforces the turn limit itself."""
        spent = stats.usage.cost_usd
        if stats.budget_usd is not None:
            if spent >= stats.budget_usd:
                return Verdict(
                    "stop", f"It reached its budget of ${stats.budget_usd:.2f}: it has spent {money(stats.usage)}."
                )
            if spent >= WARN_AT * stats.budget_usd and await self.store.warn_budget(worker.id):
                await self._tell_coordinator(
                    worker,
                    f"{worker.name} at {spent / stats.budget_usd:.0%} of its budget",
                    f"{worker.name} has spent {money(stats.usage)} of its ${stats.budget_usd:.2f} budget"
                    f" ({tokens(stats.usage)}). It is stopped when it reaches the budget; respawn_worker with"
                    " a larger budget_usd continues it.",
                )
        if stats.max_turns is not None and not native_turns and stats.usage.turns >= stats.max_turns:
            return Verdict("stop", f"It reached its limit of {stats.max_turns} turns.")
        return GO

    # -- stalls -----------------------------------------------------------------------------------------------
    async def check_silence(self, worker: SessionRecord, stall_after_s: float) -> None:
        """Tell the coordinator once when the worker has been silent for `stall_after_s`; and tell the
        workers and the operator once when their coordinator has ended or been silent as long."""
        current = await self.store.get_session(worker.id)
        if current is None or not current.live:
            return
        stats = (await self.store.session_stats([worker.id])).get(worker.id)
        last = max(current.created_at, (stats.active_at if stats else None) or 0.0)
        if now() - last >= stall_after_s and await self.store.notice_silence(worker.id, since=last):
            doing = stats.doing if stats and stats.doing else "nothing recorded yet"
            await self._tell_coordinator(
                current,
                f"{current.name} silent for {ago(last)}",
                f"{current.name} has had no model turn or tool call for {ago(last)}. Its last action: {doing}"
                f" ({ago(stats.doing_at if stats else None) or '?'} ago). Mail it, `maestro logs {current.name}`,"
                " or stop_worker / respawn_worker it.",
                priority=Priority.normal,
            )
        coordinator = await coordinator_of(self.store, current)
        if coordinator is None:
            return
        silent_since = coordinator.ended_at if not coordinator.live else coordinator.last_seen_at
        if silent_since is None or (coordinator.live and now() - silent_since < stall_after_s):
            return
        if not await self.store.notice_silence(coordinator.id, since=silent_since):
            return
        state = "has ended" if not coordinator.live else f"has been silent for {ago(silent_since)}"
        workers = await self.store.list_sessions(parent_id=coordinator.id, live=True)
        body = (
            f"Your coordinator {coordinator.name} {state}. Finish your current task, report it with"
            " report_progress, and wait for mail; the operator has been told."
        )
        operator = await operator_session(self.store)
        await self.mail.send_event(coordinator, workers, f"coordinator {coordinator.name} {state}", body)
        await self.mail.send_event(
            coordinator,
            [operator],
            f"coordinator {coordinator.name} {state}",
            f"{coordinator.name} {state}; its {len(workers)} live worker(s) were told:"
            f" {', '.join(w.name for w in workers) or 'none'}. `maestro status` shows them.",
        )

    @staticmethod
    def coordinator_responsive(coordinator: SessionRecord, stall_after_s: float) -> bool:
        """Live, and heard from within `stall_after_s`: what `coordinator_live` in whoami means. A wait
        counts as being heard from (mail_wait touches the session while it waits)."""
        return coordinator.live and now() - coordinator.last_seen_at < stall_after_s

    async def _tell_coordinator(
        self, worker: SessionRecord, subject: str, body: str, *, priority: Priority = Priority.high
    ) -> None:
        coordinator = await coordinator_of(self.store, worker)
        recipients = [coordinator] if coordinator is not None else []
        if coordinator is None or coordinator.role is not Role.coordinator:
            recipients.append(await operator_session(self.store))
        await self.mail.send_event(worker, recipients, subject, body, priority=priority)
