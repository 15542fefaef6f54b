"""Operator steering: directives that persist, show in whoami and every manifest, and arrive as critical mail."""

from __future__ import annotations

from dataclasses import dataclass

from maestro_mcp.errors import InvalidArgument, NotFound
from maestro_mcp.ids import new_id
from maestro_mcp.models import MessageType, Priority, SessionRecord
from maestro_mcp.service.mail import MailService
from maestro_mcp.store import Store

from . import limits

MAX_DIRECTIVE = 8 * 1024


@dataclass(frozen=True)
class Steered:
    directive_id: str
    recipients: list[str]


class SteeringService:
    def __init__(self, store: Store, mail: MailService) -> None:
        self.store = store
        self.mail = mail

    async def steer(self, operator: SessionRecord, text: str, to: str | None, priority: bool) -> Steered:
        """A directive for one session (`to`) or for everyone (None)."""
        if not text.strip():
            raise InvalidArgument("The directive is empty.", "Say what the agents should do differently.")
        limits.text("directive", text, MAX_DIRECTIVE)
        target = None
        if to is not None:
            target = await self.store.get_session(to)
            if target is None:
                raise NotFound(f"No session {to!r}.", "See `maestro sessions` for names.")
        directive_id = new_id("d")
        await self.store.add_directive(directive_id, text, target.id if target else None, priority, operator.id)
        recipients = (
            [target] if target else [s for s in await self.store.list_sessions(live=True) if s.id != operator.id]
        )
        if recipients:
            await self.mail.send(
                operator,
                [r.id for r in recipients],
                text,
                subject=f"directive {directive_id}" + (" (priority)" if priority else ""),
                priority=Priority.critical,
                type=MessageType.directive,
            )
        return Steered(directive_id, [r.name for r in recipients])

    async def clear(self, directive_id: str | None) -> int:
        cleared = await self.store.clear_directives(directive_id)
        if directive_id is not None and cleared == 0:
            raise NotFound(f"No active directive {directive_id!r}.", "See `maestro status` for active ones.")
        return cleared
