"""Mail tools: mail_send, mail_inbox, mail_wait, mail_thread, mail_ack."""

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import Field

from maestro_mcp.config import MAX_WAIT_S
from maestro_mcp.models import Priority

from .results import Acked, Inbox, Sent, Thread, Waited
from .runtime import Runtime

PriorityName = Literal["critical", "high", "normal", "low"]


def register(mcp: MCPServer[Any], rt: Runtime) -> None:
    mail = rt.services.mail

    @mcp.tool()
    async def mail_send(
        ctx: Context[Any, Any],
        to: Annotated[
            str | list[str],
            Field(
                description="A session name or id, or one of `coordinator`, `parent`, `children`, `siblings`,"
                " `all`; or a list mixing them."
            ),
        ],
        body: Annotated[str, Field(description="The message text (at most 64 KiB).")],
        subject: Annotated[str, Field(description="A short subject line.")] = "",
        priority: Annotated[PriorityName, Field(description="critical and high are read first.")] = "normal",
        thread_id: Annotated[str | None, Field(description="Continue this thread.")] = None,
        reply_to: Annotated[str | None, Field(description="The message_id you answer; sets the thread.")] = None,
        task_id: Annotated[str | None, Field(description="The task this message is about.")] = None,
    ) -> Sent:
        """Send durable mail to another agent, your coordinator, or a group. Each recipient gets a receipt
        (sent -> delivered when shown to it -> acked when it says so); see them with mail_thread."""
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

    @mcp.tool()
    async def mail_inbox(
        ctx: Context[Any, Any],
        limit: Annotated[int, Field(description="Most messages to return (1-500).")] = 20,
        unread_only: Annotated[bool, Field(description="False also lists mail you have already seen.")] = True,
    ) -> Inbox:
        """Your mail, unread first (critical -> low, then oldest). Returns at once; what it returns is
        marked delivered. To block until mail arrives, use mail_wait instead of calling this in a loop."""
        async with rt.call(ctx) as me:
            batch = await mail.inbox(me, limit, unread_only)
            return Inbox(messages=batch.messages, remaining=batch.remaining, unread=batch.unread)

    @mcp.tool()
    async def mail_wait(
        ctx: Context[Any, Any],
        timeout_s: Annotated[
            float,
            Field(description=f"Seconds to wait for mail (0-{MAX_WAIT_S:.0f}); then timed_out is true."),
        ] = 30,
        max_messages: Annotated[int, Field(description="Most messages to return at once (1-500).")] = 50,
    ) -> Waited:
        """Block until mail arrives for you, then return the whole batch (critical first). Wakes within
        milliseconds of a send. This is how a coordinator hears reports and events: loop on it."""
        async with rt.call(ctx) as me:
            batch = await mail.wait(me, timeout_s, max_messages)
            return Waited(messages=batch.messages, timed_out=batch.timed_out, unread=batch.unread)

    @mcp.tool()
    async def mail_thread(
        ctx: Context[Any, Any],
        thread_id: Annotated[str, Field(description="The thread_id of any message in the conversation.")],
    ) -> Thread:
        """A whole conversation, oldest first, with every recipient's receipt (sent, delivered, acked):
        use it to see whether your mail was actually read."""
        async with rt.call(ctx) as me:
            messages = await mail.thread(me, thread_id)
            return Thread(messages=messages, unread=await mail.unread(me))

    @mcp.tool()
    async def mail_ack(
        ctx: Context[Any, Any],
        message_ids: Annotated[list[str], Field(description="message_id values of mail addressed to you.")],
    ) -> Acked:
        """Acknowledge mail you have acted on, so its sender knows (they see `acked` in mail_thread)."""
        async with rt.call(ctx) as me:
            acked = await mail.ack(me, message_ids)
            return Acked(acked=acked, unread=await mail.unread(me))
