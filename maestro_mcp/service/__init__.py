"""Domain rules over the store: knows no MCP and no SQL."""

from __future__ import annotations

from dataclasses import dataclass

from maestro_mcp.config import Settings, settings
from maestro_mcp.store import Store

from .activity import ActivityService
from .approvals import ApprovalService
from .liveness import LivenessService
from .mail import MailService
from .reports import ReportService
from .sessions import SessionService
from .state import StateService
from .steering import SteeringService
from .tasks import TaskService

__all__ = [
    "ApprovalService",
    "LivenessService",
    "MailService",
    "ReportService",
    "Services",
    "SessionService",
    "StateService",
    "SteeringService",
    "TaskService",
]


@dataclass(frozen=True)
class Services:
    store: Store
    mail: MailService
    sessions: SessionService
    tasks: TaskService
    reports: ReportService
    steering: SteeringService
    approvals: ApprovalService
    activity: ActivityService
    state: StateService
    liveness: LivenessService
    config: Settings

    @classmethod
    def create(cls, store: Store, config: Settings | None = None) -> Services:
        """The services over `store`, with `config` (default: this process's settings)."""
        config = config or settings()
        mail = MailService(store)
        state = StateService(store)
        tasks = TaskService(store, mail, state)
        sessions = SessionService(store, mail, max_attempts=config.max_attempts)
        return cls(
            store=store,
            config=config,
            mail=mail,
            sessions=sessions,
            tasks=tasks,
            reports=ReportService(store, mail, tasks),
            steering=SteeringService(store, mail),
            approvals=ApprovalService(store, mail),
            activity=ActivityService(store, mail),
            state=state,
            liveness=LivenessService(store, sessions, mail, config),
        )
