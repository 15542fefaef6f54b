"""Approvals (workers' permission requests and their answers) and the policy rules they remembered."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from maestro_mcp.models import ApprovalRecord, ApprovalStatus, now

from .rows import Row
from .sql import Statement, statement, where
from .steps import Step, Wake

APPROVALS = "approvals"

COLUMNS = (
    "id", "session_id", "decider_id", "tool", "input", "call", "reason", "status", "created_at", "expires_at",
    "decided_at", "decided_by", "decision_reason", "rule",
)  # fmt: skip
# ON CONFLICT (id): a retry after a lost COMMIT finds the request stored and adds nothing.
INSERT = Statement(
    f"INSERT INTO approvals ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
    " ON CONFLICT (id) DO NOTHING"
)
GET = Statement("SELECT * FROM approvals WHERE id = :id")
# Only a pending request takes an answer: exactly one decider wins.
DECIDE = Statement(
    "UPDATE approvals SET status = :status, decided_at = :ts, decided_by = :decided_by,"
    " decision_reason = :reason, rule = :rule WHERE id = :id AND status = 'pending' RETURNING *"
)
REMEMBER = Statement(
    "INSERT INTO policy_rules (rule, decision, scope_id, request_id, created_at)"
    " VALUES (:rule, :decision, :scope_id, :request_id, :ts)"
)
CLOSE = Statement(
    "UPDATE approvals SET status = 'closed', decided_at = :ts, decision_reason = :reason"
    " WHERE session_id = :session_id AND status = 'pending' RETURNING *"
)
RULES = Statement("SELECT rule, decision FROM policy_rules WHERE scope_id {IN :scope_ids} ORDER BY seq")


def approval(row: Row) -> ApprovalRecord:
    data = {c: row[c] for c in COLUMNS}
    data["call"] = json.loads(row["call"]) if isinstance(row["call"], str) else dict(row["call"] or {})
    return ApprovalRecord.model_validate(data)


def create(record: ApprovalRecord) -> Step[None]:
    yield INSERT.run(**(record.model_dump() | {"call": json.dumps(record.call)}))
    yield Wake((APPROVALS,))


def get(approval_id: str) -> Step[ApprovalRecord | None]:
    row = yield GET.one(id=approval_id)
    return approval(row) if row else None


def listed(status: ApprovalStatus | None, session_id: str | None, limit: int) -> Step[list[ApprovalRecord]]:
    params: dict[str, Any] = {k: v for k, v in {"status": status, "session_id": session_id}.items() if v is not None}
    query = statement(f"SELECT * FROM approvals{where([f'{k} = :{k}' for k in params])} ORDER BY seq LIMIT :limit")
    return [approval(r) for r in (yield query.all(**params, limit=limit))]


def decide(
    approval_id: str, status: ApprovalStatus, decided_by: str | None, reason: str, rule: str | None
) -> Step[ApprovalRecord | None]:
    ts = now()
    row = yield DECIDE.one(id=approval_id, status=status, decided_by=decided_by, reason=reason, rule=rule, ts=ts)
    if row is None:
        return None
    if rule is not None and decided_by is not None:
        decision = "allow" if status is ApprovalStatus.allowed else "deny"
        yield REMEMBER.run(rule=rule, decision=decision, scope_id=decided_by, request_id=approval_id, ts=ts)
    yield Wake((APPROVALS, "sessions"))
    return approval(row)


def close(session_id: str, reason: str) -> Step[list[ApprovalRecord]]:
    closed = [approval(r) for r in (yield CLOSE.all(session_id=session_id, reason=reason, ts=now()))]
    if closed:
        yield Wake((APPROVALS,))
    return closed


def rules(scope_ids: Sequence[str]) -> Step[list[tuple[str, str]]]:
    if not scope_ids:
        return []
    return [(r["rule"], r["decision"]) for r in (yield RULES.all(scope_ids=list(scope_ids)))]
