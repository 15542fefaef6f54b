"""`maestro serve` over stdio: one process, one session, alive exactly as long as its agent."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
from pathlib import Path

import anyio
import anyio.abc

from maestro_mcp import adapters
from maestro_mcp.config import Identity as EnvIdentity
from maestro_mcp.config import project_root_for
from maestro_mcp.errors import InvalidArgument, MaestroError
from maestro_mcp.models import Role, SessionRecord
from maestro_mcp.service import Services
from maestro_mcp.service.delivery import DeliveryService
from maestro_mcp.service.workers import WorkerService
from maestro_mcp.store import Store, create_store

from . import build_server
from .heartbeat import beat_forever
from .hooks import HookServer
from .pipes import run_stdio
from .push import Pusher
from .runtime import ProcessIdentity, Registration, Runtime

log = logging.getLogger(__name__)


async def _on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def _check_registration(services: Services, reg: Registration) -> Registration:
    """Refuse at start a name a live session holds (that would only fail at the first tool call).

    A name whose session has ended is taken over at the first tool call: the same session, with its
    role, so its tools are listed from the start. The parent is not looked up here: it may register
    after this server starts (it does on its own first tool call), and is resolved when this one does.
    """
    if reg.name is None:
        return reg
    previous = await services.sessions.check_take_over(reg.name)
    if previous is None or previous.role is reg.role:
        return reg
    log.warning("%s was a %s: it is taken over as one", previous.name, previous.role.value)
    return dataclasses.replace(reg, role=previous.role)


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


async def _last_metre(services: Services, session: SessionRecord, root: Path, tg: anyio.abc.TaskGroup) -> None:
    """Reach the agent's model between its own calls of maestro's tools: urgent mail pushed into the
    session where its CLI allows, and the CLI's hooks answered (mail in, permission requests out)."""
    delivery = DeliveryService(services.store)
    try:
        adapter = adapters.load(session.agent, root)
    except MaestroError:
        adapter = None  # an agent kind with no launcher (an external client): nothing to reach it with
    channel = adapter.push_channel(os.environ) if adapter is not None else None
    if channel is not None:
        tg.start_soon(Pusher(channel, services.store, session, delivery).run)
    hook_socket = services.config.hook_socket
    if hook_socket:
        judges = bool(services.config.permissions)
        await tg.start(HookServer(hook_socket, services, session, root, delivery, judges=judges).run)


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
        registration = await _check_registration(services, registration)
    async with anyio.create_task_group() as tg:
        workers = worker_service(services, location, tg)
        identity = ProcessIdentity(
            services, tg, session=session, registration=registration, on_take_over=workers.adopt_orphans
        )
        await identity.start()
        heart = anyio.CancelScope()

        async def beat() -> None:
            with heart:
                await beat_forever(services, lambda: identity.session)

        tg.start_soon(beat)
        if session is not None and session.role is Role.coordinator:
            await workers.adopt_orphans(session)  # workers an earlier server process of ours started
        if session is not None:
            await _last_metre(services, session, project_root_for(location), tg)
        runtime = Runtime(
            services,
            identity,
            workers,
            project_root=project_root_for(location),
            permission_cli=(services.config.permissions or "") if session is not None else "",
        )
        server = build_server(runtime)
        tg.start_soon(_on_signal, tg.cancel_scope)
        try:
            await run_stdio(server)
        finally:
            # stdin closed or a signal: the agent is gone, and so is its session. The beat stops first,
            # so that it does not find the session this server is ending "ended by another process".
            heart.cancel()
            with anyio.CancelScope(shield=True):
                try:
                    await identity.end(workers)
                except MaestroError as exc:  # the store is gone or broken: say so, end anyway
                    log.error("could not end the session: %s", exc)
            tg.cancel_scope.cancel()
    return 0
