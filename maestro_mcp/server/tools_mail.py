"""Mail tools: mail_send, mail_inbox, mail_wait, mail_thread, mail_ack."""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import Field

from maestro_mcp.config import MAX_WAIT_S
from maestro_mcp.models import Priority

from .results import Acked, Inbox, Sent, Thread, Waited
from .runtime import Runtime
from .toolkit import ToolSet

PriorityName = Literal["critical", "high", "normal", "low"]


def register(tools: ToolSet, rt: Runtime) -> None:
    mail = rt.services.mail

    @tools.tool()
    async def mail_send(
        ctx: Context[Any, Any],
        to: Annotated[
            str | list[str],
            Field(description="Session name or id, or coordinator|parent|children|siblings|all; or a list."),
        ],
        body: Annotated[str, Field(description="The text (at most 64 KiB).")],
        subject: Annotated[str, Field(description="A short subject.")] = "",
        priority: Annotated[PriorityName, Field(description="critical/high are read first.")] = "normal",
        thread_id: Annotated[str | None, Field(description="Continue this thread.")] = None,
        reply_to: Annotated[str | None, Field(description="The message_id you answer (sets the thread).")] = None,
        task_id: Annotated[str | None, Field(description="The task it is about.")] = None,
    ) -> Sent:
        """Send durable mail; each recipient's receipt goes sent -> delivered -> acked (mail_thread)."""
        async with rt.call(ctx) as me:
            sent = await mail.send(
                me,
                to,
                body,
                subject=subject,
                priority=Priority(priority),
                thread_id=thread_id,
                reply_to=reply_to,
                task_id=task_id,
            )
            return Sent(
                message_id=sent.message_id,
                thread_id=sent.thread_id,
                recipients=sent.recipients,
                warnings=sent.warnings,
                unread=await mail.unread(me),
            )

    @tools.tool(read_only=True)
    async def mail_inbox(
        ctx: Context[Any, Any],
        limit: Annotated[int, Field(description="Most messages (1-500).")] = 20,
        unread_only: Annotated[bool, Field(description="false: also mail already seen.")] = True,
    ) -> Inbox:
        """Your mail now, unread and critical first; marks it delivered. To wait for mail, use mail_wait."""
        async with rt.call(ctx) as me:
            batch = await mail.inbox(me, limit, unread_only)
            return Inbox(messages=batch.messages, remaining=batch.remaining, unread=batch.unread)

    @tools.tool(read_only=True)
    async def mail_wait(
        ctx: Context[Any, Any],
        timeout_s: Annotated[float, Field(description=f"Seconds to wait (0-{MAX_WAIT_S:.0f}).")] = 30,
        max_messages: Annotated[int, Field(description="Most messages (1-500).")] = 50,
    ) -> Waited:
        """Block until mail comes, then return it, critical first (timed_out if none). Coordinators loop
        on it: reports and events arrive here."""
        async with rt.call(ctx) as me:
            batch = await mail.wait(me, timeout_s, max_messages)
            return Waited(messages=batch.messages, timed_out=batch.timed_out, unread=batch.unread)

    @tools.tool(read_only=True)
    async def mail_thread(
        ctx: Context[Any, Any],
        thread_id: Annotated[str, Field(description="thread_id of any message in it.")],
    ) -> Thread:
        """A conversation, oldest first, with each recipient's receipt: was your mail read?"""
        async with rt.call(ctx) as me:
            messages = await mail.thread(me, thread_id)
            return Thread(messages=messages, unread=await mail.unread(me))

    @tools.tool(idempotent=True)
    async def mail_ack(
        ctx: Context[Any, Any],
        message_ids: Annotated[list[str], Field(description="message_ids of mail to you.")],
    ) -> Acked:
        """Acknowledge mail you acted on: its sender sees `acked` in mail_thread."""
        async with rt.call(ctx) as me:
            acked = await mail.ack(me, message_ids)
            return Acked(acked=acked, unread=await mail.unread(me))
