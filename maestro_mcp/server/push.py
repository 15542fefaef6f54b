"""Urgent mail pushed into a running agent session the moment it arrives, where the agent's CLI offers a
way in (Claude Code's messaging socket): no waiting for the agent's next tool call.

Only critical and high mail is pushed: each push can make a finishing agent take one more turn, which is
right for "stop, the requirements changed" and wrong for an FYI. A message becomes `delivered` once the
CLI has taken the text; if the session cannot be reached it stays unread for the next try or tool call.
"""

from __future__ import annotations

import logging

from maestro_mcp.adapters.base import PushChannel
from maestro_mcp.models import SessionRecord
from maestro_mcp.service.delivery import DeliveryService
from maestro_mcp.store import Store, mail_topic

log = logging.getLogger(__name__)

SAFETY_S = 5.0
"""The notifier rings at once; this only bounds a wake-up lost between processes."""


class Pusher:
    def __init__(self, channel: PushChannel, store: Store, session: SessionRecord, delivery: DeliveryService) -> None:
        self.channel = channel
        self.store = store
        self.session = session
        self.delivery = delivery

    async def run(self) -> None:
        async with self.store.subscribe(mail_topic(self.session.id)) as bell:
            while True:
                await self.push_once()
                await bell.wait(SAFETY_S)

    async def push_once(self) -> list[str]:
        injection = await self.delivery.next_injection(self.session, announce=False)
        if injection is None or not injection.message_ids:
            return []
        try:
            await self.channel.send(injection.text)
        except (OSError, TimeoutError) as exc:
            log.info("could not push mail into the session: %s", exc)
            self.delivery.release(self.session, injection.message_ids)
            return []
        return await self.delivery.confirm(self.session, injection.message_ids)
