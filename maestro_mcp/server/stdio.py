"""`maestro serve` over stdio: one process, one session, alive exactly as long as its agent."""

from __future__ import annotations

import logging
import os
import signal
import sys

import anyio
import anyio.abc

from maestro_mcp.config import Identity as EnvIdentity
from maestro_mcp.config import project_root_for
from maestro_mcp.errors import InvalidArgument, MaestroError, NotFound
from maestro_mcp.models import Role
from maestro_mcp.service import Services
from maestro_mcp.service.sessions import check_name
from maestro_mcp.service.workers import WorkerService
from maestro_mcp.store import Store, create_store

from . import build_server
from .pipes import run_stdio
from .runtime import ProcessIdentity, Registration, Runtime

log = logging.getLogger(__name__)


async def _on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def _check_registration(store: Store, reg: Registration) -> None:
    """Refuse at start what would only fail at the first tool call: a taken name, an unknown parent."""
    if reg.name is not None:
        check_name(reg.name)
        if await store.get_session(reg.name) is not None:
            raise InvalidArgument(
                f"The session name {reg.name!r} is taken in this project.",
                "Choose another --name, or leave it out to get a generated one.",
            )
    if reg.parent is not None and await store.get_session(reg.parent) is None:
        raise NotFound(f"No parent session {reg.parent!r}.", "Name an existing session with --parent.")


async def serve_stdio(location: str, registration: Registration, env: EnvIdentity) -> int:
    store = create_store(location)
    try:
        await store.open()
        return await _serve(store, location, registration, env)
    except MaestroError as exc:
        print(f"maestro serve: {exc}", file=sys.stderr)
        return 2
    finally:
        await store.close()


def worker_service(services: Services, location: str, tg: anyio.abc.TaskGroup) -> WorkerService:
    """Spawning for this process: its children are watched from `tg`, which lives as long as the server."""
    return WorkerService(
        services.store,
        services.sessions,
        services.mail,
        services.tasks,
        tg,
        project_root=project_root_for(location),
        db=location,
    )


async def _serve(store: Store, location: str, registration: Registration, env: EnvIdentity) -> int:
    services = Services.create(store)
    if (env.session_id is None) != (env.token is None):
        raise InvalidArgument(
            "Only one of MAESTRO_SESSION and MAESTRO_TOKEN is set.",
            "Set both to resume a session, or neither to register a new one.",
        )
    session = None
    if env.session_id is not None and env.token is not None:
        session = await services.sessions.resume(env.session_id, env.token, os.getpid())
    else:
        await _check_registration(store, registration)
    async with anyio.create_task_group() as tg:
        identity = ProcessIdentity(services, tg, session=session, registration=registration)
        await identity.start()
        workers = worker_service(services, location, tg)
        if session is not None and session.role is Role.coordinator:
            await workers.adopt_orphans(session)  # workers an earlier server process of ours started
        server = build_server(Runtime(services, identity, workers))
        tg.start_soon(_on_signal, tg.cancel_scope)
        try:
            await run_stdio(server)
        finally:
            # stdin closed or a signal: the agent is gone, and so is its session.
            with anyio.CancelScope(shield=True):
                await identity.end(workers)
            tg.cancel_scope.cancel()
    return 0
