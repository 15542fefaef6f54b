"""What each row of a snapshot may hold, checked before `maestro import` writes anything.

A snapshot is a file anyone can edit, and everything read back from the store is trusted by the
commands and tools that show it: a session whose role is `god` or a message of priority 7 once
imported fine and then crashed `maestro sessions`, `status` and `tasks`. So every value of every
row goes through a model here: enums, timestamps a date can be made of, bounded integers, JSON
fields that parse to what they should, texts within the limits an agent is held to, no NUL (which
PostgreSQL cannot store), and declared files confined to the project. The first bad value refuses
the whole document with one line naming its table, row and column.

Columns not modelled here (added by a later migration) still pass the generic check of
`snapshot.parse`: text, a number or null. tests/human/test_snapshot_validation.py checks that every
table a snapshot holds has a model.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from maestro_mcp import files
from maestro_mcp.config import MAX_BODY_BYTES, MAX_SUBJECT_CHARS
from maestro_mcp.errors import InvalidArgument, MaestroError
from maestro_mcp.models import (
    ActivityKind,
    ApprovalStatus,
    MessageType,
    ReceiptStatus,
    ReportKind,
    Role,
    SessionStatus,
    TaskStatus,
)

from . import limits
from .state import MAX_VALUE_BYTES, check_key

# Epoch seconds from 1970 up to the last second of year 9999: what an ISO-8601 date can show.
LAST_TS = 253_402_300_799.0
INT32 = 2**31 - 1
PLACE = "Pass an unmodified file written by `maestro export`."


def _timestamp(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a time in epoch seconds")
    if not math.isfinite(value) or not 0 <= value <= LAST_TS:
        raise ValueError(f"{value!r} is not a time between 1970 and 9999")
    return float(value)


def _text(limit: int, *, chars: bool = False) -> Any:
    def check(value: str) -> str:
        try:
            return limits.text("value", value, limit, chars=chars)
        except MaestroError as exc:
            raise ValueError(str(exc).split(". ")[0].replace("`value` ", "")) from None

    return AfterValidator(check)


def _json_list(value: Any) -> list[str]:
    """A list column as a dump holds it: JSON text of a list of strings."""
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError("is not a JSON list") from None
    if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
        raise ValueError("is not a JSON list of strings")
    try:
        return limits.items("value", parsed)
    except MaestroError as exc:
        raise ValueError(str(exc).split(". ")[0].replace("`value", "`")) from None


def _declared_files(value: list[str]) -> list[str]:
    for entry in value:
        try:
            files.normalize(entry)
        except MaestroError as exc:
            raise ValueError(str(exc).rstrip(".")) from None
    return value


def _json_object(value: Any) -> str:
    try:
        parsed = json.loads(value) if isinstance(value, str) else None
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValueError("is not a JSON object")
    return str(value)


def _flag(value: Any) -> int:
    if value not in (0, 1) or isinstance(value, float):
        raise ValueError(f"{value!r} is not 0 or 1")
    return int(value)


Timestamp = Annotated[float, BeforeValidator(_timestamp)]
Id = Annotated[StrictStr, Field(min_length=1, max_length=64), _text(64, chars=True)]
Name = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Short = Annotated[StrictStr, _text(limits.MAX_ITEM, chars=True)]
Title = Annotated[StrictStr, _text(limits.MAX_TITLE, chars=True)]
Text = Annotated[StrictStr, _text(limits.MAX_TEXT)]
Pid = Annotated[StrictInt, Field(ge=1, le=INT32)]
Count = Annotated[StrictInt, Field(ge=0, le=INT32)]
Seq = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
Rank = Annotated[StrictInt, Field(ge=0, le=3)]
Flag = Annotated[int, BeforeValidator(_flag)]
List = Annotated[list[str], BeforeValidator(_json_list)]
Files = Annotated[list[str], BeforeValidator(_json_list), AfterValidator(_declared_files)]
JsonObject = Annotated[str, BeforeValidator(_json_object)]


class Row(BaseModel):
    # Texts and integers are strict ("1" is no number, 1 no text); enums are read from their values.
    # Extra columns are a later migration's.
    model_config = ConfigDict(extra="allow")


class SessionRow(Row):
    id: Id
    name: Name
    role: Role
    agent: Short
    parent_id: Id | None = None
    status: SessionStatus
    workspace: Short | None = None
    pid: Pid | None = None
    token_hash: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    created_at: Timestamp
    last_seen_at: Timestamp
    ended_at: Timestamp | None = None
    exit_code: Annotated[StrictInt, Field(ge=-INT32, le=INT32)] | None = None
    spawner_pid: Pid | None = None
    log_path: Short | None = None
    directive: Text | None = None
    profile: Short | None = None
    isolation: Short | None = None
    branch: Short | None = None
    host: Short | None = None
    heartbeat_at: Timestamp | None = None


class MessageRow(Row):
    seq: Seq
    id: Id
    thread_id: Id
    reply_to: Id | None = None
    sender_id: Id
    subject: Annotated[StrictStr, _text(MAX_SUBJECT_CHARS, chars=True)]
    body: Annotated[StrictStr, _text(MAX_BODY_BYTES)]
    priority: Rank
    type: MessageType
    task_id: Id | None = None
    created_at: Timestamp


class ReceiptRow(Row):
    session_id: Id
    message_seq: Seq
    status: ReceiptStatus
    priority: Rank
    delivered_at: Timestamp | None = None
    acked_at: Timestamp | None = None


class DirectiveRow(Row):
    id: Id
    text: Text
    target_id: Id | None = None
    priority: Flag = 0
    created_by: Id | None = None
    created_at: Timestamp
    cleared_at: Timestamp | None = None


class TaskRow(Row):
    seq: Seq
    id: Id
    key: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")] | None = None
    title: Title
    description: Text = ""
    acceptance: Text = ""
    status: TaskStatus
    priority: Annotated[StrictInt, Field(ge=-limits.MAX_PRIORITY, le=limits.MAX_PRIORITY)] = 0
    wave: Count = 0
    parent_id: Id | None = None
    files: Files = Field(default_factory=list)
    assignee_id: Id | None = None
    created_by: Id | None = None
    result: Text | None = None
    artifacts: List = Field(default_factory=list)
    blocked_reason: Text | None = None
    blocked_on_deps: Flag = 0
    attempts: Count = 0
    created_at: Timestamp
    updated_at: Timestamp
    released_from: Id | None = None


class TaskDepRow(Row):
    task_id: Id
    depends_on: Id


class ReportRow(Row):
    seq: Seq
    id: Id
    session_id: Id
    task_id: Id | None = None
    kind: ReportKind
    summary: Text
    artifacts: List = Field(default_factory=list)
    percent: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] | None = None
    created_at: Timestamp


class ApprovalRow(Row):
    seq: Seq
    id: Id
    session_id: Id
    decider_id: Id | None = None
    tool: Short
    input: Text
    call: JsonObject = "{}"
    reason: Text
    status: ApprovalStatus
    created_at: Timestamp
    expires_at: Timestamp
    decided_at: Timestamp | None = None
    decided_by: Id | None = None
    decision_reason: Text | None = None
    rule: Short | None = None


class PolicyRuleRow(Row):
    seq: Seq
    rule: Short
    decision: Annotated[StrictStr, Field(pattern=r"^(allow|deny)$")]
    scope_id: Id
    request_id: Id | None = None
    created_at: Timestamp


Tokens = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
Dollars = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]


class ActivityRow(Row):
    session_id: Id
    seq: Seq
    at: Timestamp
    kind: ActivityKind
    summary: Text
    tool: Short
    ok: Flag | None = None


class UsageColumns(Row):
    """The usage columns session_stats and task_usage share."""

    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    cached_tokens: Tokens = 0
    turns: Count = 0
    cost_usd: Dollars = 0.0
    cost_estimated: Flag = 0


class SessionStatsRow(UsageColumns):
    session_id: Id
    events: Count = 0
    dropped: Count = 0
    skipped: Count = 0
    lost: Count = 0
    doing: Text | None = None
    doing_at: Timestamp | None = None
    active_at: Timestamp | None = None
    conversation_id: Short | None = None
    model: Short | None = None
    budget_usd: Annotated[float, Field(gt=0, le=1e12, allow_inf_nan=False)] | None = None
    max_turns: Annotated[StrictInt, Field(ge=1, le=INT32)] | None = None
    budget_warned: Flag = 0
    silence_noticed_at: Timestamp | None = None
    restarts: Count = 0
    launch: JsonObject = "{}"
    relay_id: Short | None = None
    relay_batch: Count = 0


class TaskUsageRow(UsageColumns):
    task_id: Id
    session_id: Id


def _state_key(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{_short(value)} is not a text")
    try:
        return check_key(value)
    except InvalidArgument as exc:
        raise ValueError(str(exc).split(" Use ")[0].rstrip(".")) from None


def _state_value(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{_short(value)} is not a text")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise ValueError(f"is {len(value.encode())} bytes; the limit is {MAX_VALUE_BYTES}")
    try:
        json.loads(value)
    except json.JSONDecodeError:
        raise ValueError("is not JSON") from None
    return value


class StateRow(Row):
    key: Annotated[str, BeforeValidator(_state_key)]
    value: Annotated[str, BeforeValidator(_state_value)]
    version: Seq
    set_by: Id | None = None
    set_at: Timestamp
    expires_at: Timestamp | None = None


MODELS: dict[str, type[Row]] = {
    "sessions": SessionRow,
    "messages": MessageRow,
    "receipts": ReceiptRow,
    "directives": DirectiveRow,
    "tasks": TaskRow,
    "task_deps": TaskDepRow,
    "reports": ReportRow,
    "approvals": ApprovalRow,
    "policy_rules": PolicyRuleRow,
    "activity": ActivityRow,
    "session_stats": SessionStatsRow,
    "task_usage": TaskUsageRow,
    "state": StateRow,
}


def _first_problem(exc: ValidationError) -> tuple[str, str]:
    error = exc.errors(include_url=False)[0]
    column = ".".join(str(p) for p in error["loc"] if not isinstance(p, int)) or "?"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "enum":
        message = f"{error['input']!r} is not one of {error['ctx']['expected']}"
    elif error["type"] == "missing":
        message = "is missing"
    elif "input" in error and error["type"] != "value_error":
        message = f"{_short(error['input'])} {message.removeprefix('Input ').removeprefix('input ')}"
    return column, message


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def check(source: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    """Refuse the snapshot at its first bad value; see the module docstring for what is checked."""
    for table, rows in tables.items():
        model = MODELS.get(table)
        if model is None:
            continue
        for number, row in enumerate(rows, 1):
            try:
                model.model_validate(row)
            except ValidationError as exc:
                column, message = _first_problem(exc)
                raise InvalidArgument(f"{source}: {table} row {number}, `{column}`: {message}.", PLACE) from None
        _check_references(source, table, rows)
    _check_cycles(source, tables.get("task_deps", []))


def _check_references(source: str, table: str, rows: list[dict[str, Any]]) -> None:
    """What a model of one row cannot see: a task that is its own parent or its own dependency."""
    for number, row in enumerate(rows, 1):
        if table == "tasks" and row.get("parent_id") is not None and row.get("parent_id") == row.get("id"):
            raise InvalidArgument(f"{source}: tasks row {number}, `parent_id`: the task is its own parent.", PLACE)
        if table == "task_deps" and row.get("task_id") == row.get("depends_on"):
            raise InvalidArgument(f"{source}: task_deps row {number}, `depends_on`: the task depends on itself.", PLACE)
        if table == "sessions" and row.get("parent_id") is not None and row.get("parent_id") == row.get("id"):
            raise InvalidArgument(
                f"{source}: sessions row {number}, `parent_id`: the session is its own parent.", PLACE
            )


def _check_cycles(source: str, deps: list[dict[str, Any]]) -> None:
    """Dependencies form a DAG, as task_create keeps them: a cycle would leave its tasks pending forever."""
    edges: dict[str, list[str]] = {}
    for row in deps:
        edges.setdefault(str(row["task_id"]), []).append(str(row["depends_on"]))
    done: set[str] = set()
    for start in edges:
        path: set[str] = set()
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, i = stack.pop()
            if node in done:
                continue
            path.add(node)
            nexts = edges.get(node, [])
            if i < len(nexts):
                stack.append((node, i + 1))
                nxt = nexts[i]
                if nxt in path:
                    raise InvalidArgument(
                        f"{source}: task_deps: {node} and {nxt} depend on each other (a cycle).", PLACE
                    )
                stack.append((nxt, 0))
            else:
                path.discard(node)
                done.add(node)
