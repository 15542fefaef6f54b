"""The last metre: urgent mail put into a busy agent's context at its next step, through its CLI's hooks.

At every hook (after each tool call, typically) the agent's own server asks what to hand the model:
critical and high mail in full, and for normal and low mail only a line that says how much waits and
from whom (so the context stays small). Receipts stay honest: an urgent message becomes `delivered`
only when the hook confirms it has handed the text to the CLI, and it is reserved meanwhile, so it is
never injected twice. A message whose hook never confirms goes back to being offered.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from maestro_mcp.models import Message, Priority, SessionRecord
from maestro_mcp.store import Store

URGENT = (Priority.critical, Priority.high)
MAX_INJECTED = 10
"""Urgent messages handed over in one step; the rest follow at the next steps."""
RESERVE_S = 30.0
"""How long a message handed to a hook stays reserved for its confirmation."""
PEEK = 50


@dataclass(frozen=True)
class Injection:
    """Text for the model's context, and the urgent messages it delivers once confirmed."""

    text: str
    message_ids: list[str]


@dataclass
class _Inbox:
    reserved: dict[str, float] = field(default_factory=dict)
    """message id -> monotonic time it was handed to a hook, until the hook confirms."""
    announced: frozenset[str] = frozenset()
    """The normal and low messages the model was last told about."""


INTRO = "maestro: urgent mail for you, delivered now. Read it and act on it before you continue."


def _block(m: Message, body: str) -> str:
    subject = f" Subject: {m.subject}" if m.subject else ""
    task = f" about task {m.task_id}" if m.task_id else ""
    return f"[{m.priority.value} {m.type.value}] from {m.sender}{task} (message {m.message_id}).{subject}\n{body}"


def render_urgent(messages: Sequence[Message], limit: int) -> tuple[str, list[str], list[str]]:
    """The text for urgent `messages` within `limit` characters, the ids it hands over whole, and the ids
    it shows at all.

    A message too long for the limit is shown cut short and left unread, with a pointer to mail_inbox:
    a receipt says `delivered` only for text the model was really given."""
    blocks: list[str] = []
    whole: list[str] = []
    shown: list[str] = []
    used = len(INTRO) + 200
    for m in messages:
        block = _block(m, m.body)
        if used + len(block) <= limit:
            blocks.append(block)
            whole.append(m.message_id)
            shown.append(m.message_id)
            used += len(block) + 2
        elif not blocks:
            room = max(limit - used - 200, 200)
            cut = m.body[:room] + f"… (cut short: read message {m.message_id} whole with mail_inbox now)"
            blocks.append(_block(m, cut))
            shown.append(m.message_id)
            break
        else:
            break  # the rest follow at the next step
    ids = ", ".join(f'"{i}"' for i in whole)
    ack = f"\n\nWhen you have acted on it, call mail_ack(message_ids=[{ids}]); answer with mail_send(reply_to=...)."
    return INTRO + "\n\n" + "\n\n".join(blocks) + (ack if whole else ""), whole, shown


def render_announcement(messages: Sequence[Message], total: int) -> str:
    senders = ", ".join(dict.fromkeys(m.sender for m in messages))
    count = f"{total} unread message" + ("s" if total != 1 else "")
    return f"maestro: {count} for you (from {senders}). Read them with mail_inbox when you reach a stopping point."


class DeliveryService:
    """Per server process: what each of its sessions' hooks hand the model next."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._inboxes: dict[str, _Inbox] = {}

    async def next_injection(
        self, session: SessionRecord, limit: int = 60_000, *, announce: bool = True
    ) -> Injection | None:
        """What to hand the model now: urgent mail in full, and (with `announce`) news of other mail."""
        inbox = self._inboxes.setdefault(session.id, _Inbox())
        horizon = time.monotonic() - RESERVE_S
        inbox.reserved = {m: t for m, t in inbox.reserved.items() if t > horizon}
        unread = await self.store.peek_unread(session.id, PEEK)
        urgent = [m for m in unread if m.priority in URGENT and m.message_id not in inbox.reserved][:MAX_INJECTED]
        rest = [m for m in unread if m.priority not in URGENT]
        parts = []
        handed: list[str] = []
        shown: list[str] = []
        if urgent:
            text, handed, shown = render_urgent(urgent, limit)
            parts.append(text)
        others = frozenset(m.message_id for m in rest)
        if announce and others - inbox.announced:
            # Only news is announced: a reminder at every step for mail already mentioned is noise.
            total = (await self.store.unread(session.id)).count - len(urgent) - len(inbox.reserved)
            parts.append(render_announcement(rest, max(total, len(rest))))
        if announce:
            inbox.announced = others
        if not parts:
            return None
        stamp = time.monotonic()
        for message_id in shown:  # one cut short is not delivered, but not shown again at every step either
            inbox.reserved[message_id] = stamp
        return Injection("\n\n".join(parts), handed)

    async def confirm(self, session: SessionRecord, message_ids: Sequence[str]) -> list[str]:
        """The hook handed the text to the CLI: those messages are delivered now."""
        delivered = await self.store.mark_delivered(session.id, message_ids) if message_ids else []
        self.release(session, message_ids)
        return delivered

    def release(self, session: SessionRecord, message_ids: Sequence[str]) -> None:
        """The hook never confirmed: offer those messages again at the next step."""
        inbox = self._inboxes.get(session.id)
        if inbox is not None:
            for message_id in message_ids:
                inbox.reserved.pop(message_id, None)
