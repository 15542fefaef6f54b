"""Domain rules over the store: knows no MCP and no SQL."""

from __future__ import annotations

from dataclasses import dataclass

from maestro_mcp.store import Store

from .mail import MailService
from .sessions import SessionService

__all__ = ["MailService", "Services", "SessionService"]


@dataclass(frozen=True)
class Services:
    store: Store
    mail: MailService
    sessions: SessionService

    @classmethod
    def create(cls, store: Store) -> Services:
        mail = MailService(store)
        return cls(store=store, mail=mail, sessions=SessionService(store, mail))
