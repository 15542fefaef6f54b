"""Connection timeouts for `maestro serve --http`: a client gets a bounded time to send a request head.

uvicorn closes an idle keep-alive connection only after a response, and any byte resets that timer, so a
connection that never finishes its request head (the slowloris pattern: 300 half-open connections
stayed open for 30 s) held its socket for ever. Here every connection must deliver a complete request
head within `Settings.http_head_timeout_s` of connecting (10 s; MAESTRO_HTTP_HEAD_TIMEOUT_S), and again after
each response, however slowly its bytes trickle in. A request being answered (a long `mail_wait`, an
event stream) is never cut.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from maestro_mcp.config import settings

IDLE_TIMEOUT_S = 30
"""Seconds an idle keep-alive connection stays open between requests."""
MAX_CONNECTIONS = 2000
"""Connections at once; beyond it uvicorn answers 503 instead of exhausting file descriptors."""


class GuardedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_timeout_s = settings().http_head_timeout_s

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self._head_timeout_s, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is None or self.cycle.response_complete:  # no request is being answered
            self.timeout_keep_alive_handler()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # a whole request head arrived: it is being answered

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
