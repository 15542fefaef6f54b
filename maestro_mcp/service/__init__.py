"""Domain rules over the store: knows no MCP and no SQL."""

from __future__ import annotations

from dataclasses import dataclass

from maestro_mcp.store import Store

from .mail import MailService
from .reports import ReportService
from .sessions import SessionService
from .steering import SteeringService
from .tasks import TaskService

__all__ = ["MailService", "ReportService", "Services", "SessionService", "SteeringService", "TaskService"]


@dataclass(frozen=True)
class Services:
    store: Store
    mail: MailService
    sessions: SessionService
    tasks: TaskService
    reports: ReportService
    steering: SteeringService

    @classmethod
    def create(cls, store: Store) -> Services:
        mail = MailService(store)
        tasks = TaskService(store, mail)
        return cls(
            store=store,
            mail=mail,
            sessions=SessionService(store, mail),
            tasks=tasks,
            reports=ReportService(store, mail, tasks),
            steering=SteeringService(store, mail),
        )
