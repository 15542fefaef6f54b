"""The beat of a serve process: its heartbeat, and a look at the sessions it can judge dead.

One UPDATE and one indexed SELECT every `heartbeat_s` per process (see service/liveness.py): with
fifty agents on a project that is some fifty statements a second at the default of 2 s, each far
below a millisecond. The first beat waits a random fraction of the period, so that servers started
together do not all beat at once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import anyio

from maestro_mcp.errors import MaestroError
from maestro_mcp.models import SessionRecord
from maestro_mcp.service import Services

log = logging.getLogger(__name__)


async def beat_forever(services: Services, session_of: Callable[[], SessionRecord | None]) -> None:
    """Run for the life of the server. `session_of` gives this process's session once it has one
    (None for `maestro serve --http`, which serves many and only sweeps)."""
    every_s = services.config.heartbeat_s
    told = ""
    await anyio.sleep(random.uniform(0, every_s))
    while True:
        session = session_of()
        problem = ""
        try:
            if session is not None and not await services.liveness.beat(session.id):
                problem = f"session {session.name} was ended by another process while this server ran"
            await services.liveness.sweep(own=session.id if session is not None else None)
        except MaestroError as exc:
            problem = f"heartbeat: {exc}"
        except Exception as exc:  # a store hiccup must not take the server down: beat again later
            problem = f"heartbeat failed: {exc!r}"
        if problem and problem != told:  # said once, not every beat
            log.warning("%s", problem)
        told = problem
        await anyio.sleep(every_s)
