"""Mail: targets, validation, honest receipts, and waiting without polling."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import anyio
import anyio.lowlevel

from maestro_mcp import wakes
from maestro_mcp.config import MAX_BODY_BYTES, MAX_SUBJECT_CHARS, MAX_WAIT_S, SAFETY_POLL_S
from maestro_mcp.errors import Forbidden, InvalidArgument, NotFound
from maestro_mcp.ids import new_id
from maestro_mcp.models import (
    Message,
    MessageType,
    NewMessage,
    Priority,
    Role,
    SessionRecord,
    ThreadMessage,
    Unread,
    now,
    parse_iso,
)
from maestro_mcp.store import Store, mail_topic

from . import limits

SCOPES = ("coordinator", "parent", "children", "siblings", "all")
MAX_TARGETS = 100
MAX_BATCH = 500


async def coordinator_of(store: Store, session: SessionRecord) -> SessionRecord | None:
    """The nearest ancestor with the coordinator role: who this session reports to."""
    current = session
    for _ in range(64):  # parent chains are short; the bound only guards against a corrupt cycle
        if current.parent_id is None:
            return None
        parent = await store.get_session(current.parent_id)
        if parent is None:
            return None
        if parent.role is Role.coordinator:
            return parent
        current = parent
    return None


WAITING_TOUCH_S = 60.0


def nothing_unread() -> Unread:
    return Unread(count=0, urgent=False)


@dataclass(frozen=True)
class Batch:
    """Mail just handed to its recipient (now `delivered`), and what is still unread after it."""

    messages: list[Message]
    remaining: int
    unread: Unread
    timed_out: bool = False


@dataclass(frozen=True)
class SendResult:
    message_id: str
    thread_id: str
    recipients: list[str]
    warnings: list[str]


def event(
    sender: SessionRecord,
    recipients: Sequence[SessionRecord],
    subject: str,
    body: str,
    *,
    priority: Priority = Priority.high,
    task_id: str | None = None,
) -> NewMessage:
    """A lifecycle event (worker exited, task completed, …) as a new message of type `event`."""
    message_id = new_id("m")
    return NewMessage(
        id=message_id,
        thread_id=message_id,
        reply_to=None,
        sender_id=sender.id,
        subject=subject,
        body=body,
        priority=priority,
        type=MessageType.event,
        task_id=task_id,
        created_at=now(),
        recipient_ids=[r.id for r in recipients],
    )


class MailService:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- targets --------------------------------------------------------------
    async def resolve_targets(self, caller: SessionRecord, to: str | Sequence[str]) -> list[SessionRecord]:
        """Turn `to` (a name, id, scope word, or a list of them) into distinct recipient sessions."""
        items = [to] if isinstance(to, str) else list(to)
        if not items:
            raise InvalidArgument("`to` is empty.", "Name a session, or one of: " + ", ".join(SCOPES) + ".")
        if len(items) > MAX_TARGETS:
            raise InvalidArgument(
                f"`to` lists {len(items)} targets; the limit is {MAX_TARGETS}.",
                "Send to a group instead (children, siblings, all), or in several mail_send calls.",
            )
        found: dict[str, SessionRecord] = {}
        for raw in items:
            item = raw.strip() if isinstance(raw, str) else raw
            if not item:
                raise InvalidArgument("`to` contains an empty target.", "Name a session or a scope.")
            for session in await self._resolve_one(caller, item):
                found.setdefault(session.id, session)
        if not found:
            raise NotFound(
                f"Nobody to send to: {', '.join(map(repr, items))} matched no live session.",
                "Call list_sessions to see who is here.",
            )
        return list(found.values())

    async def _resolve_one(self, caller: SessionRecord, item: str) -> list[SessionRecord]:
        store = self.store
        if item == "coordinator" and caller.role is Role.operator:
            # The operator has no coordinator above it: for a human, `coordinator` is the project's own.
            live = [s for s in await store.list_sessions(role=Role.coordinator, live=True) if s.parent_id is None]
            if len(live) == 1:
                return live
            if not live:
                raise NotFound("No coordinator is live in this project.", "Start one with `maestro launch`.")
            raise InvalidArgument(
                f"Several coordinators are live: {', '.join(s.name for s in live)}.", "Name the one you mean."
            )
        if item == "coordinator":
            coordinator = await coordinator_of(store, caller)
            if coordinator is None:
                raise NotFound(
                    "You have no coordinator: no session above you has the coordinator role.",
                    "Address sessions by name, or use `children` / `all`.",
                )
            return [coordinator]
        if item == "parent":
            parent = await store.get_session(caller.parent_id) if caller.parent_id else None
            if parent is None:
                raise NotFound("You have no parent session.", "Address sessions by name, or use `children`.")
            return [parent]
        if item == "children":
            return await store.list_sessions(parent_id=caller.id, live=True)
        if item == "siblings":
            if caller.parent_id is None:
                return []
            peers = await store.list_sessions(parent_id=caller.parent_id, live=True)
            return [s for s in peers if s.id != caller.id]
        if item == "all":
            return [s for s in await store.list_sessions(live=True) if s.id != caller.id]
        session = await store.get_session(item)
        if session is None:
            raise NotFound(
                f"No session named {item!r}.",
                "Call list_sessions for names, or use one of: " + ", ".join(SCOPES) + ".",
            )
        return [session]

    # -- sending --------------------------------------------------------------
    async def send(
        self,
        caller: SessionRecord,
        to: str | Sequence[str],
        body: str,
        *,
        subject: str = "",
        priority: Priority = Priority.normal,
        thread_id: str | None = None,
        reply_to: str | None = None,
        task_id: str | None = None,
        type: MessageType = MessageType.message,
    ) -> SendResult:
        if not body or not body.strip():
            raise InvalidArgument("The message body is empty.", "Say something in `body`.")
        limits.text("body", body, MAX_BODY_BYTES)
        limits.text("subject", subject, MAX_SUBJECT_CHARS, chars=True)
        thread = await self._thread_for(caller, thread_id, reply_to)
        recipients = await self.resolve_targets(caller, to)
        message_id = new_id("m")
        await self.store.insert_message(
            NewMessage(
                id=message_id,
                thread_id=thread or message_id,
                reply_to=reply_to,
                sender_id=caller.id,
                subject=subject,
                body=body,
                priority=priority,
                type=type,
                task_id=task_id,
                created_at=now(),
                recipient_ids=[r.id for r in recipients],
            )
        )
        warnings = [
            f"{r.name} has ended ({r.status.value}); it will read this only if it is resumed."
            for r in recipients
            if not r.live
        ]
        return SendResult(message_id, thread or message_id, [r.name for r in recipients], warnings)

    async def _thread_for(self, caller: SessionRecord, thread_id: str | None, reply_to: str | None) -> str | None:
        if reply_to is not None:
            original = await self.store.get_message(reply_to)
            if original is None:
                raise NotFound(f"No message {reply_to!r} to reply to.", "Use a message_id from your inbox or a thread.")
            if thread_id is not None and thread_id != original.thread_id:
                raise InvalidArgument(
                    f"Message {reply_to!r} belongs to thread {original.thread_id!r}, not {thread_id!r}.",
                    "Pass only reply_to; the thread follows from it.",
                )
            thread_id = original.thread_id
        elif thread_id is None:
            return None
        messages = await self.store.thread(thread_id)
        if not messages:
            raise NotFound(
                f"No thread {thread_id!r}.",
                "A thread id is the message_id of its first message; leave it out to start a new thread.",
            )
        await self._check_visible(caller, thread_id, messages)
        return thread_id

    async def send_event(
        self,
        sender: SessionRecord,
        recipients: Sequence[SessionRecord],
        subject: str,
        body: str,
        *,
        priority: Priority = Priority.high,
        task_id: str | None = None,
    ) -> str | None:
        """A lifecycle event (worker exited, task completed, …) as mail of type `event`."""
        if not recipients:
            return None
        message = event(sender, recipients, subject, body, priority=priority, task_id=task_id)
        await self.store.insert_message(message)
        return message.id

    # -- reading --------------------------------------------------------------
    async def unread(self, caller: SessionRecord) -> Unread:
        return await self.store.unread(caller.id)

    async def _take(self, caller: SessionRecord, limit: int) -> tuple[list[Message], int, float]:
        """Take unread mail; the take itself is never cut short (shielded), so it is whole or nothing."""
        taken_at = now()
        with anyio.CancelScope(shield=True):
            messages, remaining = await self.store.take_unread(caller.id, limit, taken_at=taken_at)
        return messages, remaining, taken_at

    @contextlib.asynccontextmanager
    async def _handing_over(
        self, caller: SessionRecord, messages: list[Message], taken_at: float
    ) -> AsyncIterator[None]:
        """Until the batch is returned: if the call is cancelled now (in the instant after its take, or
        while the rest of the answer is read), nobody will see these messages, so their receipts go back
        to `sent` (those still delivered by this take only) and the next wait returns them."""
        try:
            await anyio.lowlevel.checkpoint()  # a cancellation that arrived during the shielded take lands here
            yield
        except anyio.get_cancelled_exc_class():
            if messages:
                with anyio.CancelScope(shield=True):
                    await self.store.put_back(caller.id, [m.message_id for m in messages], taken_at)
            raise

    async def inbox(self, caller: SessionRecord, limit: int, unread_only: bool) -> Batch:
        _check_batch("limit", limit)
        messages, remaining, taken_at = await self._take(caller, limit)
        async with self._handing_over(caller, messages, taken_at):
            if not unread_only and len(messages) < limit:
                # The messages just taken are "read" now too: skip them, or they would use up the limit twice.
                taken = {m.message_id for m in messages}
                seen = [m for m in await self.store.recent_read(caller.id, limit) if m.message_id not in taken]
                messages = messages + seen[: limit - len(messages)]
            return Batch(messages, remaining, await self._unread_after(caller, remaining))

    async def wait(self, caller: SessionRecord, timeout_s: float, max_messages: int) -> Batch:
        """Block until unread mail exists, then take it (or time out with nothing)."""
        if not 0 <= timeout_s <= MAX_WAIT_S:
            raise InvalidArgument(
                f"timeout_s={timeout_s} is out of range.",
                f"Use 0 to {MAX_WAIT_S:.0f} seconds, and call mail_wait again to keep waiting.",
            )
        _check_batch("max_messages", max_messages)
        deadline = time.monotonic() + timeout_s
        slept = False
        seen = time.monotonic()
        # Subscribe before looking, so a send committed between the look and the sleep still rings.
        async with self.store.subscribe(mail_topic(caller.id)) as bell:
            while True:
                messages, remaining, taken_at = await self._take(caller, max_messages)
                if messages:
                    if slept and wakes.observing():
                        # Only mail that arrived during the wait measures the wake-up, not mail left unread.
                        for m in messages:
                            wakes.observe("mail_wait", taken_at - parse_iso(m.created_at))
                    async with self._handing_over(caller, messages, taken_at):
                        return Batch(messages, remaining, await self._unread_after(caller, remaining))
                left = deadline - time.monotonic()
                if left <= 0:
                    return Batch([], 0, nothing_unread(), timed_out=True)
                if time.monotonic() - seen >= WAITING_TOUCH_S:
                    # Waiting is being there: a coordinator in a long wait is not silent (see ActivityService).
                    seen = time.monotonic()
                    await self.store.touch_session(caller.id)
                await bell.wait(min(left, SAFETY_POLL_S))
                slept = True

    async def _unread_after(self, caller: SessionRecord, remaining: int) -> Unread:
        """The caller's unread mail after a take. `remaining` was counted in the take's own transaction,
        so when it is zero there is nothing to look up: this keeps a wake-up to two store round trips."""
        if remaining == 0:
            return nothing_unread()
        return await self.store.unread(caller.id)

    async def thread(self, caller: SessionRecord, thread_id: str) -> list[ThreadMessage]:
        messages = await self.store.thread(thread_id)
        if not messages:
            raise NotFound(
                f"No thread {thread_id!r}.", "A thread id is the thread_id field of a message you have seen."
            )
        await self._check_visible(caller, thread_id, messages)
        # The caller is being shown these messages now: for its own receipts, that is delivery.
        if await self.store.mark_thread_delivered(thread_id, caller.id):
            messages = await self.store.thread(thread_id)
        return messages

    async def _check_visible(self, caller: SessionRecord, thread_id: str, messages: Sequence[ThreadMessage]) -> None:
        """A thread is visible to its participants, to their ancestor coordinators and to the operator."""
        if caller.role is Role.operator:
            return
        names = {m.sender for m in messages} | {r.name for m in messages for r in m.receipts}
        if caller.name in names:
            return
        for name in names:
            participant = await self.store.get_session(name)
            current = participant
            for _ in range(64):  # parent chains are short; the bound guards against a corrupt cycle
                if current is None or current.parent_id is None:
                    break
                if current.parent_id == caller.id:
                    return
                current = await self.store.get_session(current.parent_id)
        raise Forbidden(
            f"Thread {thread_id} is between other agents ({', '.join(sorted(names))}).",
            "Only its participants, their coordinators and the operator can read it or reply in it.",
        )

    async def ack(self, caller: SessionRecord, message_ids: Sequence[str]) -> list[str]:
        ids = [m for m in message_ids if isinstance(m, str) and m.strip()]
        if not ids:
            raise InvalidArgument("message_ids is empty.", "Pass the message_id of each message to acknowledge.")
        if len(ids) > MAX_BATCH:
            raise InvalidArgument(
                f"`message_ids` lists {len(ids)} ids; the limit is {MAX_BATCH}.", "Acknowledge them in several calls."
            )
        return await self.store.ack(caller.id, ids)


def _check_batch(name: str, value: int) -> None:
    if not 1 <= value <= MAX_BATCH:
        raise InvalidArgument(f"{name}={value} is out of range.", f"Use 1 to {MAX_BATCH}.")
