"""The vocabulary: enums and pydantic models shared by every layer.

Tool results are built from these models, so their field names are the public
contract (shared/DESIGN.md pins them). Timestamps are ISO-8601 strings in UTC.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

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


def now() -> float:
    """Store timestamps are epoch seconds (REAL / double precision) on every backend."""
    return datetime.now(UTC).timestamp()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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

    key: str | None = Field(default=None, description="A name for this task, local to the call, for depends_on.")
    title: str = Field(description="What to do, in a few words.")
    description: str = Field(default="", description="Details, context, constraints.")
    depends_on: list[str] = Field(
        default_factory=list, description="Keys of tasks in this call, or ids of existing tasks."
    )
    files: list[str] = Field(
        default_factory=list, description="Paths or globs (relative to the project) this task will change."
    )
    assignee: str | None = Field(default=None, description="Session name or id that must do it (optional).")
    parent_id: str | None = Field(default=None, description="Parent task: an id, or a key of this call.")
    acceptance: str | list[str] = Field(default="", description="Acceptance criteria: when is it done?")
    priority: int = Field(default=0, description="Higher is claimed first (default 0).")
