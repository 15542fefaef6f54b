"""Activity: each session's window of recent events, its usage and limits, and spend per task.

A relay (maestro_mcp/relay.py) records a worker's events in batches, one transaction each. A batch is
numbered by its relay, so a batch retried after a lost COMMIT is recognised and counted once. The
window is bounded: once a session holds 10% more than `window` events, the oldest are deleted and
counted in `dropped` (trimming in steps keeps the delete off most batches).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from maestro_mcp.models import (
    ActivityBatch,
    ActivityEvent,
    ActivityKind,
    SessionStats,
    TaskUsage,
    Usage,
    now,
)

from .rows import Row
from .sql import Statement, statement
from .steps import Step, Wake

ACTIVITY = "activity"
"""Rung on any session's activity: displays of every worker (status, watch, the dashboard)."""


def activity_topic(session_id: str) -> str:
    """Rung on this session's activity: `maestro logs -f`."""
    return f"activity:{session_id}"


ROWS_PER_INSERT = 100
TRIM_SLACK = 0.1

ENSURE = Statement("INSERT INTO session_stats (session_id) VALUES (:session_id) ON CONFLICT (session_id) DO NOTHING")
GET = Statement("SELECT * FROM session_stats WHERE session_id = :session_id")
ALL = Statement("SELECT * FROM session_stats ORDER BY session_id")
SOME = Statement("SELECT * FROM session_stats WHERE session_id {IN :ids} ORDER BY session_id")
RECORDED = Statement(
    "UPDATE session_stats SET events = events + :n, skipped = skipped + :skipped, lost = lost + :lost,"
    " input_tokens = input_tokens + :input_tokens, output_tokens = output_tokens + :output_tokens,"
    " cached_tokens = cached_tokens + :cached_tokens, turns = turns + :turns, cost_usd = cost_usd + :cost_usd,"
    " cost_estimated = (cost_estimated OR :cost_estimated),"
    " doing = COALESCE(:doing, doing), doing_at = COALESCE(:doing_at, doing_at),"
    " active_at = COALESCE(:active_at, active_at),"
    " conversation_id = COALESCE(:conversation_id, conversation_id), model = COALESCE(:model, model),"
    " relay_id = :relay_id, relay_batch = :batch WHERE session_id = :session_id RETURNING *"
)
TRIM = Statement("DELETE FROM activity WHERE session_id = :session_id AND seq <= :upto")
DROPPED = Statement("UPDATE session_stats SET dropped = :dropped WHERE session_id = :session_id RETURNING *")
# Usage is billed to the task the worker has in progress, else to the one it finished last (a CLI may
# report a run's spend only when the run ends, after the task was completed), else to one reserved for it
# (the turns before its claim are spent on it).
BILLED_TASK = Statement(
    "SELECT id FROM tasks WHERE assignee_id = :session_id AND status IN ('in_progress', 'done', 'failed', 'ready',"
    " 'pending') ORDER BY CASE status WHEN 'in_progress' THEN 0 WHEN 'done' THEN 1 WHEN 'failed' THEN 1 ELSE 2 END,"
    " updated_at DESC, seq DESC LIMIT 1"
)
ENSURE_TASK_USAGE = Statement(
    "INSERT INTO task_usage (task_id, session_id) VALUES (:task_id, :session_id)"
    " ON CONFLICT (task_id, session_id) DO NOTHING"
)
ADD_TASK_USAGE = Statement(
    "UPDATE task_usage SET input_tokens = input_tokens + :input_tokens, output_tokens = output_tokens +"
    " :output_tokens, cached_tokens = cached_tokens + :cached_tokens, turns = turns + :turns,"
    " cost_usd = cost_usd + :cost_usd, cost_estimated = (cost_estimated OR :cost_estimated)"
    " WHERE task_id = :task_id AND session_id = :session_id"
)
EVENTS_AFTER = Statement(
    "SELECT * FROM activity WHERE session_id = :session_id AND seq > :after ORDER BY seq LIMIT :limit"
)
LAST_EVENTS = Statement("SELECT * FROM activity WHERE session_id = :session_id ORDER BY seq DESC LIMIT :limit")
SET_LIMITS = Statement(
    "UPDATE session_stats SET budget_usd = :budget_usd, max_turns = :max_turns, budget_warned = {FALSE}"
    " WHERE session_id = :session_id"
)
SET_LAUNCH = Statement(
    "UPDATE session_stats SET launch = :launch, conversation_id = COALESCE(:conversation_id, conversation_id)"
    " WHERE session_id = :session_id"
)
RESTARTED = Statement(
    "UPDATE session_stats SET restarts = restarts + 1, silence_noticed_at = NULL, active_at = :ts, doing = NULL,"
    " doing_at = :ts, relay_id = NULL, relay_batch = 0 WHERE session_id = :session_id RETURNING *"
)
# Compare-and-set: of processes noticing the same thing at once, one tells.
WARN_BUDGET = Statement(
    "UPDATE session_stats SET budget_warned = TRUE WHERE session_id = :session_id AND budget_warned = {FALSE}"
)
NOTICE_SILENCE = Statement(
    "UPDATE session_stats SET silence_noticed_at = :ts WHERE session_id = :session_id"
    " AND (silence_noticed_at IS NULL OR silence_noticed_at < :since)"
)
USAGE_OF_TASKS = Statement("SELECT * FROM task_usage WHERE task_id {IN :ids} ORDER BY task_id, session_id")
ALL_TASK_USAGE = Statement("SELECT * FROM task_usage ORDER BY task_id, session_id")


def _usage(row: Row) -> Usage:
    return Usage(
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cached_tokens=int(row["cached_tokens"]),
        turns=int(row["turns"]),
        cost_usd=float(row["cost_usd"]),
        cost_estimated=bool(row["cost_estimated"]),
    )


def stats_row(row: Row) -> SessionStats:
    launch = row["launch"]
    return SessionStats(
        session_id=row["session_id"],
        events=row["events"],
        dropped=row["dropped"],
        skipped=row["skipped"],
        lost=row["lost"],
        usage=_usage(row),
        doing=row["doing"],
        doing_at=row["doing_at"],
        active_at=row["active_at"],
        conversation_id=row["conversation_id"],
        model=row["model"],
        budget_usd=row["budget_usd"],
        max_turns=row["max_turns"],
        budget_warned=bool(row["budget_warned"]),
        silence_noticed_at=row["silence_noticed_at"],
        restarts=row["restarts"],
        launch=json.loads(launch) if isinstance(launch, str) and launch else {},
    )


def event_row(row: Row) -> ActivityEvent:
    return ActivityEvent(
        session_id=row["session_id"],
        seq=row["seq"],
        at=row["at"],
        kind=ActivityKind(row["kind"]),
        summary=row["summary"],
        tool=row["tool"],
        ok=None if row["ok"] is None else bool(row["ok"]),
    )


def _insert(count: int) -> Statement:
    values = ", ".join(f"(:session_id, :seq{i}, :at{i}, :kind{i}, :summary{i}, :tool{i}, :ok{i})" for i in range(count))
    return statement(f"INSERT INTO activity (session_id, seq, at, kind, summary, tool, ok) VALUES {values}")


def record(batch: ActivityBatch) -> Step[SessionStats]:
    sid, relay_id = batch.session_id, batch.relay
    yield ENSURE.run(session_id=sid)
    row = yield GET.one(session_id=sid)
    if row["relay_id"] == relay_id and row["relay_batch"] >= batch.batch:
        return stats_row(row)  # recorded already: this is a retry after a lost COMMIT
    first = int(row["events"]) + 1
    events = batch.events
    for start in range(0, len(events), ROWS_PER_INSERT):
        chunk = events[start : start + ROWS_PER_INSERT]
        params: dict[str, Any] = {"session_id": sid}
        for i, e in enumerate(chunk):
            params |= {
                f"seq{i}": first + start + i,
                f"at{i}": e.at,
                f"kind{i}": e.kind.value,
                f"summary{i}": e.summary,
                f"tool{i}": e.tool,
                f"ok{i}": e.ok,
            }
        yield _insert(len(chunk)).run(**params)
    usage = batch.usage
    doing_at = next((e.at for e in reversed(events) if e.kind is ActivityKind.tool_call), None)
    if batch.doing is not None and doing_at is None:
        doing_at = batch.active_at or now()
    row = yield RECORDED.one(
        session_id=sid,
        n=len(events),
        skipped=batch.skipped,
        lost=batch.lost,
        **usage.model_dump(),
        doing=batch.doing,
        doing_at=doing_at if batch.doing is not None else None,
        active_at=batch.active_at,
        conversation_id=batch.conversation_id,
        model=batch.model,
        relay_id=relay_id,
        batch=batch.batch,
    )
    kept = int(row["events"]) - int(row["dropped"])
    if kept > batch.window * (1 + TRIM_SLACK):
        upto = int(row["events"]) - batch.window
        yield TRIM.run(session_id=sid, upto=upto)
        row = yield DROPPED.one(session_id=sid, dropped=upto)
    if not usage.empty:
        task_id = yield BILLED_TASK.value(session_id=sid)
        if task_id is not None:
            yield ENSURE_TASK_USAGE.run(task_id=task_id, session_id=sid)
            yield ADD_TASK_USAGE.run(task_id=task_id, session_id=sid, **usage.model_dump())
    yield Wake((activity_topic(sid), ACTIVITY))
    return stats_row(row)


def stats(session_ids: Sequence[str] | None) -> Step[dict[str, SessionStats]]:
    found = yield (ALL.all() if session_ids is None else SOME.all(ids=list(session_ids)))
    return {r["session_id"]: stats_row(r) for r in found}


def events(session_id: str, after: int, limit: int) -> Step[list[ActivityEvent]]:
    return [event_row(r) for r in (yield EVENTS_AFTER.all(session_id=session_id, after=after, limit=limit))]


def last_events(session_id: str, limit: int) -> Step[list[ActivityEvent]]:
    found = yield LAST_EVENTS.all(session_id=session_id, limit=limit)
    return [event_row(r) for r in reversed(found)]


def set_limits(session_id: str, budget_usd: float | None, max_turns: int | None) -> Step[None]:
    yield ENSURE.run(session_id=session_id)
    yield SET_LIMITS.run(session_id=session_id, budget_usd=budget_usd, max_turns=max_turns)


def set_launch(session_id: str, launch: dict[str, Any], conversation_id: str | None) -> Step[None]:
    yield ENSURE.run(session_id=session_id)
    yield SET_LAUNCH.run(session_id=session_id, launch=json.dumps(launch), conversation_id=conversation_id)


def restarted(session_id: str) -> Step[SessionStats]:
    yield ENSURE.run(session_id=session_id)
    row = yield RESTARTED.one(session_id=session_id, ts=now())
    yield Wake((activity_topic(session_id), ACTIVITY))
    return stats_row(row)


def warn_budget(session_id: str) -> Step[bool]:
    yield ENSURE.run(session_id=session_id)
    return bool((yield WARN_BUDGET.count(session_id=session_id)))


def notice_silence(session_id: str, since: float) -> Step[bool]:
    """Claim telling of a silence that began at `since`: True for exactly one caller per silence."""
    yield ENSURE.run(session_id=session_id)
    return bool((yield NOTICE_SILENCE.count(session_id=session_id, since=since, ts=now())))


def task_usage(task_ids: Sequence[str] | None) -> Step[list[TaskUsage]]:
    found = yield (ALL_TASK_USAGE.all() if task_ids is None else USAGE_OF_TASKS.all(ids=list(task_ids)))
    return [TaskUsage(task_id=r["task_id"], session_id=r["session_id"], usage=_usage(r)) for r in found]
