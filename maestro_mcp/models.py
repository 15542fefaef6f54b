"""The vocabulary: enums and pydantic models shared by every layer.

Tool results are built from these models, so their field names are the public
contract (shared/DESIGN.md pins them). Timestamps are ISO-8601 strings in UTC.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Role(enum.StrEnum):
    coordinator = "coordinator"
    worker = "worker"
    operator = "operator"


class SessionStatus(enum.StrEnum):
    spawning = "spawning"
    working = "working"
    idle = "idle"
    blocked = "blocked"
    needs_input = "needs_input"
    done = "done"
    failed = "failed"
    exited = "exited"
    stopped = "stopped"


class Priority(enum.StrEnum):
    critical = "critical"
    high = "high"
    normal = "normal"
    low = "low"

    @property
    def rank(self) -> int:
        """Lower sorts first: critical mail is returned before low mail."""
        return _PRIORITY_RANK[self]

    @classmethod
    def from_rank(cls, rank: int) -> Priority:
        return _RANK_PRIORITY[rank]


_PRIORITY_RANK = {Priority.critical: 0, Priority.high: 1, Priority.normal: 2, Priority.low: 3}
_RANK_PRIORITY = {v: k for k, v in _PRIORITY_RANK.items()}


class MessageType(enum.StrEnum):
    message = "message"
    event = "event"
    directive = "directive"


class ReceiptStatus(enum.StrEnum):
    sent = "sent"
    delivered = "delivered"
    acked = "acked"


class TaskStatus(enum.StrEnum):
    pending = "pending"
    ready = "ready"
    in_progress = "in_progress"
    blocked = "blocked"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


class ReportKind(enum.StrEnum):
    progress = "progress"
    complete = "complete"
    blocked = "blocked"
    needs_input = "needs_input"
    failed = "failed"


SCHEDULER_AGENT = "maestro"
"""The agent kind of `maestro run`'s built-in scheduler: a coordinator that is no model, so what a
coordinator would be asked (approvals) goes to the operator instead."""


def now() -> float:
    """Store timestamps are epoch seconds (REAL / double precision) on every backend."""
    return datetime.now(UTC).timestamp()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """Epoch seconds of a timestamp written by `iso`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Model(BaseModel):
    model_config = ConfigDict(frozen=False, use_enum_values=False)


class Unread(Model):
    """Carried by every tool result so a busy agent learns of urgent mail at its next call."""

    count: int = Field(description="Messages addressed to you that you have not been shown yet.")
    urgent: bool = Field(description="True when any of them is high or critical priority: read them now.")


class SessionRecord(Model):
    """A session as stored. `token_hash` never leaves the service layer."""

    id: str
    name: str
    role: Role
    agent: str
    parent_id: str | None
    status: SessionStatus
    workspace: str | None
    pid: int | None
    created_at: float
    last_seen_at: float
    ended_at: float | None = None
    exit_code: int | None = None
    token_hash: str | None = None
    spawner_pid: int | None = None
    log_path: str | None = None
    directive: str | None = None
    profile: str | None = None
    isolation: str | None = None
    branch: str | None = None
    host: str | None = None
    """The machine its serve process runs on, with `heartbeat_at` its last sign of life (migration 7)."""
    heartbeat_at: float | None = None

    @property
    def live(self) -> bool:
        return self.ended_at is None


class SessionInfo(Model):
    """What other agents see of a session."""

    session_id: str
    name: str
    role: Role
    agent: str
    parent: str | None = Field(description="Name of the session that spawned this one.")
    status: SessionStatus
    live: bool = Field(description="False once the session's server has ended.")
    last_seen_at: str | None
    exit_code: int | None = None


class Receipt(Model):
    session_id: str
    name: str
    status: ReceiptStatus
    delivered_at: str | None = None
    acked_at: str | None = None


class Message(Model):
    message_id: str
    thread_id: str
    reply_to: str | None
    sender: str = Field(description="Name of the sending session.")
    subject: str
    body: str
    priority: Priority
    type: MessageType
    task_id: str | None
    created_at: str


class ThreadMessage(Message):
    receipts: list[Receipt]


class NewMessage(Model):
    """A message about to be stored, with its recipients resolved to session ids."""

    id: str
    thread_id: str
    reply_to: str | None
    sender_id: str
    subject: str
    body: str
    priority: Priority
    type: MessageType
    task_id: str | None
    created_at: float
    recipient_ids: list[str]


class Directive(Model):
    directive_id: str
    text: str
    to: str | None = Field(description="Session name it concerns, or null for everyone.")
    priority: bool
    created_at: str


class TaskRecord(Model):
    """A task as stored. `depends_on` holds task ids; `wave` is the longest dependency chain to it."""

    id: str
    key: str | None
    title: str
    description: str
    acceptance: str
    status: TaskStatus
    priority: int
    wave: int
    parent_id: str | None
    depends_on: list[str]
    files: list[str]
    assignee_id: str | None
    created_by: str | None
    result: str | None
    artifacts: list[str]
    blocked_reason: str | None
    blocked_on_deps: bool
    attempts: int
    created_at: float
    updated_at: float
    released_from: str | None = None
    """The session whose end last let go of it (released or unreserved): a respawn of that session takes
    it back while nobody else holds it."""


class NewTask(Model):
    """A task about to be stored; ids are assigned and dependencies resolved to ids by the service."""

    id: str
    key: str | None
    title: str
    description: str
    acceptance: str
    priority: int
    wave: int
    parent_id: str | None
    depends_on: list[str]
    files: list[str]
    assignee_id: str | None
    created_by: str | None
    status: TaskStatus
    blocked_reason: str | None = None
    created_at: float


class Task(Model):
    """A task as tools return it (shared/DESIGN.md pins these fields)."""

    id: str
    key: str | None
    title: str
    description: str
    acceptance: str
    status: TaskStatus
    wave: int
    depends_on: list[str]
    files: list[str]
    assignee: str | None = Field(description="Name of the session working on it.")
    result: str | None
    artifacts: list[str]
    parent_id: str | None = None
    priority: int = 0
    blocked_reason: str | None = None
    attempts: int = 0


class TaskChange(Model):
    """What a task update did to the graph: the task itself and the dependents it moved."""

    task: TaskRecord
    now_ready: list[TaskRecord] = Field(default_factory=list)
    now_blocked: list[TaskRecord] = Field(default_factory=list)


class ClaimOutcome(Model):
    claimed: TaskRecord | None
    ready: list[TaskRecord]
    skipped: list[str] = Field(
        default_factory=list, description="Why ready tasks were passed over (file ownership, assignee)."
    )


class SessionOverview(Model):
    """What `whoami` shows of a session's surroundings, read in one go."""

    parent: SessionRecord | None
    coordinator: SessionRecord | None
    siblings: list[SessionRecord]
    tasks: list[TaskRecord]
    """Its tasks that are not finished (done, failed or cancelled)."""
    directives: list[Directive]
    unread: Unread
    team_spend_usd: float | None = None
    """A coordinator's: its own spend and its workers' so far (None for other roles)."""


class ReportRecord(Model):
    id: str
    session_id: str
    task_id: str | None
    kind: ReportKind
    summary: str
    artifacts: list[str]
    percent: float | None
    created_at: float


class TaskSpec(Model):
    """One entry of task_create (or of a plan file)."""

    key: str | None = Field(default=None, description="Its name in this call, for depends_on.")
    title: str = Field(description="What to do, in a few words.")
    description: str = Field(default="", description="Details and constraints.")
    depends_on: list[str] = Field(default_factory=list, description="Keys from this call or ids of tasks.")
    files: list[str] = Field(default_factory=list, description="Paths or globs it will change.")
    assignee: str | None = Field(default=None, description="Session (name or id) that must do it.")
    parent_id: str | None = Field(default=None, description="Parent task: an id or a key from this call.")
    acceptance: str | list[str] = Field(default="", description="When is it done?")
    priority: int = Field(default=0, description="Higher is claimed first.")


class ApprovalStatus(enum.StrEnum):
    pending = "pending"
    allowed = "allowed"
    denied = "denied"
    expired = "expired"
    """Nobody decided in time: the call was denied."""
    closed = "closed"
    """The worker ended while it waited."""


class ApprovalRecord(Model):
    """A worker's permission request that the policy did not decide, and its answer."""

    id: str
    session_id: str
    decider_id: str | None = Field(description="The coordinator asked to decide (null: the operator).")
    tool: str = Field(description="The tool as the worker's CLI names it (Bash, run_shell_command, …).")
    input: str = Field(description="What the tool would do, as truncated text: never executed by maestro.")
    call: dict[str, Any] = Field(description="The call in the policy's terms (kind, command, paths, server).")
    reason: str = Field(description="Why it was asked: what the policy said.")
    status: ApprovalStatus
    created_at: float
    expires_at: float
    decided_at: float | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    rule: str | None = Field(default=None, description="The rule remembered with the decision, if any.")


class SessionEnding(Model):
    """What ending a session let go of, in the same transaction: nothing it held outlives it."""

    session: SessionRecord
    released: list[TaskRecord] = Field(default_factory=list, description="Its in-progress tasks, as they now are.")
    freed: list[TaskRecord] = Field(default_factory=list, description="Tasks reserved for it, unassigned again.")
    unanswered: list[ApprovalRecord] = Field(default_factory=list, description="Its pending requests, closed.")
    parent: SessionRecord | None = None
    last_report: ReportRecord | None = None


class ActivityKind(enum.StrEnum):
    """What one activity event of a worker is (see maestro_mcp/activity.py for how CLIs map to these)."""

    start = "start"
    turn = "turn"
    tool_call = "tool_call"
    tool_result = "tool_result"
    usage = "usage"
    error = "error"
    exit = "exit"


class Usage(Model):
    """Tokens and dollars; `cost_estimated` when dollars were priced from the price table, not reported."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    turns: int = 0
    cost_usd: float = 0.0
    cost_estimated: bool = False

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            turns=self.turns + other.turns,
            cost_usd=self.cost_usd + other.cost_usd,
            cost_estimated=self.cost_estimated or other.cost_estimated,
        )

    @property
    def empty(self) -> bool:
        return not (self.input_tokens or self.output_tokens or self.cached_tokens or self.turns or self.cost_usd)


class NewActivity(Model):
    """One event as a relay records it (already redacted)."""

    at: float
    kind: ActivityKind
    summary: str = ""
    tool: str = ""
    ok: bool | None = None


class ActivityEvent(NewActivity):
    """One stored event of a session's activity window; `seq` counts from 1 per session."""

    session_id: str
    seq: int


class ActivityBatch(Model):
    """What a relay records in one transaction. `batch` numbers a relay's batches from 1, so that a
    batch retried after a lost COMMIT is recognised and not counted twice."""

    session_id: str
    relay: str = Field(description="The recording relay's own id: batch numbers are per relay.")
    batch: int
    events: list[NewActivity] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    doing: str | None = Field(default=None, description="The current action, when it changed.")
    active_at: float | None = Field(default=None, description="The last model turn or tool call in this batch.")
    conversation_id: str | None = None
    model: str | None = None
    skipped: int = Field(default=0, description="Output lines that were not events (malformed, unknown).")
    lost: int = Field(default=0, description="Events the relay could not keep (its buffer overflowed).")
    window: int = Field(default=2000, description="Events kept per session; older ones are dropped and counted.")


class SessionStats(Model):
    """What a session did and spent, and its limits: one row per session that has activity or limits."""

    session_id: str
    events: int = Field(default=0, description="Events recorded so far (the seq of the last one).")
    dropped: int = Field(default=0, description="Older events dropped from the window.")
    skipped: int = 0
    lost: int = 0
    usage: Usage = Field(default_factory=Usage)
    doing: str | None = None
    doing_at: float | None = None
    active_at: float | None = None
    conversation_id: str | None = None
    model: str | None = None
    budget_usd: float | None = None
    max_turns: int | None = None
    budget_warned: bool = False
    silence_noticed_at: float | None = None
    restarts: int = 0
    launch: dict[str, Any] = Field(default_factory=dict, description="How it was started, for a respawn.")


class TaskUsage(Model):
    task_id: str
    session_id: str
    usage: Usage


class StateEntry(Model):
    """A shared value as stored: `value` is JSON text; `set_by` a session id (None: set by no session)."""

    key: str
    value: str
    version: int
    set_by: str | None
    set_at: float
    expires_at: float | None


class StateWrite(Model):
    """What a compare-and-set did: `entry` is the value now stored when it won, else the one that beat it
    (None when the key is unset)."""

    won: bool
    entry: StateEntry | None
