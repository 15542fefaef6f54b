"""Permission requests answered by the team: what the policy does not decide waits, with a bound, for
an ancestor coordinator or the operator, instead of being silently denied.

A request makes the worker `needs_input` and mails its coordinator a `high` event naming it. The
worker's tool call waits on the notifier (not a poll) for the answer; when time runs out the call
is denied and the model is told why. A worker can never answer its own requests: only an ancestor
coordinator or the operator can. What a tool would do is shown as truncated text, never executed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import anyio

from maestro_mcp.config import SAFETY_POLL_S
from maestro_mcp.errors import Conflict, Forbidden, NotFound
from maestro_mcp.ids import new_id
from maestro_mcp.models import (
    SCHEDULER_AGENT,
    ApprovalRecord,
    ApprovalStatus,
    Priority,
    Role,
    SessionRecord,
    SessionStatus,
    now,
)
from maestro_mcp.policy import Decision, Rule, RuleSet, ToolCall, Verdict, load_policy, parse_rule, remembered_rule
from maestro_mcp.store import Store

from . import limits
from .mail import MailService, coordinator_of
from .sessions import OPERATOR, operator_session

APPROVALS_TOPIC = "approvals"
MAX_INPUT_CHARS = 2000
MAX_REASON_CHARS = 2000


def shown(call: ToolCall, raw: object | None = None) -> str:
    """What a request shows of a tool call: text, truncated, never anything to run."""
    if call.command:
        text = call.command
    elif raw is not None:
        text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
    else:
        text = ", ".join(call.paths) or call.tool
    return text if len(text) <= MAX_INPUT_CHARS else text[: MAX_INPUT_CHARS - 1] + "…"


class ApprovalService:
    def __init__(self, store: Store, mail: MailService) -> None:
        self.store = store
        self.mail = mail

    # -- the policy, for one worker -------------------------------------------
    async def rules_for(self, session: SessionRecord, project_root: Path | None) -> RuleSet:
        """The project's rules for the session's profile, plus what its team's deciders remembered."""
        rules = load_policy(project_root).for_profile(session.profile)
        scopes = [a.id for a in await self._ancestors(session)]
        operator = await self.store.get_session(OPERATOR)
        if operator is not None and operator.role is Role.operator:
            scopes.append(operator.id)
        allow: list[Rule] = []
        deny: list[Rule] = []
        for text, decision in await self.store.policy_rules(scopes):
            (allow if decision == "allow" else deny).append(parse_rule(text))
        return rules.extended(allow, deny)

    async def _ancestors(self, session: SessionRecord) -> list[SessionRecord]:
        found: list[SessionRecord] = []
        current = session
        for _ in range(64):  # parent chains are short; the bound only guards against a corrupt cycle
            if current.parent_id is None:
                break
            parent = await self.store.get_session(current.parent_id)
            if parent is None:
                break
            found.append(parent)
            current = parent
        return found

    # -- judging a call -------------------------------------------------------
    async def judge(self, session: SessionRecord, call: ToolCall, project_root: Path, raw: object = None) -> Verdict:
        """The policy's verdict on a tool call the session's CLI is about to make; what it cannot decide
        is put to the team, and this waits (bounded) for the answer."""
        current = await self.store.get_session(session.id) or session
        rules = await self.rules_for(current, project_root)
        verdict = rules.decide(call, Path(current.workspace or project_root))
        if verdict.decision is not Decision.ask:
            return verdict
        return await self.ask(current, call, verdict, rules.approval_timeout_s, raw)

    # -- asking ---------------------------------------------------------------
    async def ask(
        self, worker: SessionRecord, call: ToolCall, verdict: Verdict, timeout_s: float, raw: object | None = None
    ) -> Verdict:
        """Put the call to the team and wait (bounded) for the answer; the verdict the tool call gets."""
        coordinator = await coordinator_of(self.store, worker)
        if coordinator is not None and coordinator.agent == SCHEDULER_AGENT:
            coordinator = None  # maestro run's scheduler decides nothing: the run's approvals go to the operator
        ts = now()
        record = ApprovalRecord(
            id=new_id("a"),
            session_id=worker.id,
            decider_id=coordinator.id if coordinator else None,
            tool=call.tool,
            input=shown(call, raw),
            call=asdict(call),
            reason=verdict.reason[:MAX_REASON_CHARS],
            status=ApprovalStatus.pending,
            created_at=ts,
            expires_at=ts + timeout_s,
        )
        await self.store.create_approval(record)
        await self.store.set_session_status(worker.id, SessionStatus.needs_input)
        deciders = [coordinator] if coordinator is not None else [await self._operator()]
        await self.mail.send_event(
            worker,
            deciders,
            f"{worker.name} asks to use {call.tool}: {_short(record.input)}",
            "\n".join(
                [
                    f"{worker.name} needs approval ({record.id}) for {call.tool}:",
                    record.input,
                    f"Why it asks: {record.reason}",
                    f"Answer within {timeout_s:.0f} s with approval_decide(request_id={record.id!r}, allow=true|false,"
                    " reason=...) (humans: `maestro approve` / `maestro deny`); unanswered, it is denied.",
                ]
            ),
            priority=Priority.high,
        )
        abandoned = True
        try:
            decided = await self._wait(record.id, timeout_s)
            abandoned = False
        finally:
            with anyio.CancelScope(shield=True):
                current = await self.store.get_approval(record.id)
                if current is not None and current.status is ApprovalStatus.pending:
                    why = (
                        "the worker's CLI stopped waiting for the answer"
                        if abandoned
                        else f"nobody answered within {timeout_s:.0f} s"
                    )
                    decided = await self._expire(worker, current, deciders, why)
                await self.store.set_session_status(worker.id, SessionStatus.working)
        assert decided is not None
        decider = await self.store.get_session(decided.decided_by) if decided.decided_by else None
        return _verdict(decided, decider.name if decider else "")

    async def _wait(self, approval_id: str, timeout_s: float) -> ApprovalRecord | None:
        deadline = time.monotonic() + timeout_s
        async with self.store.subscribe(APPROVALS_TOPIC) as bell:
            while True:
                current = await self.store.get_approval(approval_id)
                if current is None or current.status is not ApprovalStatus.pending:
                    return current
                left = deadline - time.monotonic()
                if left <= 0:
                    return current
                await bell.wait(min(left, SAFETY_POLL_S))

    async def _expire(
        self, worker: SessionRecord, record: ApprovalRecord, deciders: Sequence[SessionRecord], reason: str
    ) -> ApprovalRecord:
        expired = await self.store.decide_approval(
            record.id, status=ApprovalStatus.expired, decided_by=None, reason=reason
        )
        if expired is None:  # answered in the last instant: that answer stands
            answered = await self.store.get_approval(record.id)
            assert answered is not None
            return answered
        await self.mail.send_event(
            worker,
            deciders,
            f"{worker.name}'s request {record.id} expired: denied",
            f"{record.id} ({record.tool}: {_short(record.input)}) was denied because {reason}.",
            priority=Priority.normal,
        )
        return expired

    async def _operator(self) -> SessionRecord:
        return await operator_session(self.store)

    # -- answering ------------------------------------------------------------
    async def pending_for(self, caller: SessionRecord) -> list[ApprovalRecord]:
        """The pending requests the caller may answer: its descendants' (the operator: everyone's)."""
        pending = await self.store.list_approvals(status=ApprovalStatus.pending)
        if caller.role is Role.operator:
            return pending
        mine = []
        for record in pending:
            requester = await self.store.get_session(record.session_id)
            if requester is not None and requester.id != caller.id and await self._is_ancestor(caller, requester):
                mine.append(record)
        return mine

    async def _is_ancestor(self, caller: SessionRecord, requester: SessionRecord) -> bool:
        return any(a.id == caller.id for a in await self._ancestors(requester))

    async def decide(
        self, caller: SessionRecord, request_id: str, allow: bool, reason: str = "", remember: bool = False
    ) -> ApprovalRecord:
        limits.text("reason", reason, MAX_REASON_CHARS, chars=True)
        record = await self.store.get_approval(request_id)
        if record is None:
            raise NotFound(f"No approval request {request_id!r}.", "Call approval_list to see the pending requests.")
        requester = await self.store.get_session(record.session_id)
        name = requester.name if requester else record.session_id
        if record.session_id == caller.id:
            raise Forbidden("You cannot answer your own request.", "Your coordinator or the operator answers it.")
        if caller.role is not Role.operator and (
            caller.role is not Role.coordinator or requester is None or not await self._is_ancestor(caller, requester)
        ):
            raise Forbidden(
                f"Request {request_id} is from {name}, who is not one of your workers.",
                "Only an ancestor coordinator of the requester, or the operator, can answer it.",
            )
        if record.status is not ApprovalStatus.pending:
            raise Conflict(_answered(record, name), "Nothing was changed; call approval_list for pending requests.")
        rule = remembered_rule(ToolCall(**record.call)) if remember else None
        status = ApprovalStatus.allowed if allow else ApprovalStatus.denied
        why = reason.strip() or ("approved" if allow else "denied")
        decided = await self.store.decide_approval(
            request_id, status=status, decided_by=caller.id, reason=why, rule=rule
        )
        if decided is None:
            again = await self.store.get_approval(request_id)
            raise Conflict(_answered(again or record, name), "Nothing was changed.")
        return decided


def _verdict(record: ApprovalRecord, decider: str) -> Verdict:
    who = decider or "maestro"
    if record.status is ApprovalStatus.allowed:
        return Verdict(Decision.allow, f"approved by {who}: {record.decision_reason}", record.rule or "")
    if record.status is ApprovalStatus.expired:
        return Verdict(Decision.deny, f"denied: {record.decision_reason} (request {record.id})")
    return Verdict(Decision.deny, f"denied by {who}: {record.decision_reason} (request {record.id})", record.rule or "")


def _answered(record: ApprovalRecord, name: str) -> str:
    return f"Request {record.id} from {name} is already {record.status.value}" + (
        f": {record.decision_reason}." if record.decision_reason else "."
    )


def _short(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
