"""Fixtures for the spawning tests; the helpers they build on are in spawnkit.py."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import anyio
import pytest
from spawnkit import CALL_S, Crew, Project, Watch

from maestro_mcp.client import AgentClient
from maestro_mcp.models import Role
from maestro_mcp.server import ProcessIdentity, Runtime, build_server
from maestro_mcp.service import Services
from maestro_mcp.service.workers import WorkerService
from maestro_mcp.store.notify import ALL
from maestro_mcp.store.sqlite import SQLiteStore


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    (root / ".maestro").mkdir(parents=True)
    return Project(root)


@pytest.fixture
async def watch(project: Project) -> AsyncIterator[Watch]:
    store = SQLiteStore(project.db)
    await store.open()
    try:
        async with anyio.create_task_group() as tg:
            await store.listen(ALL, tg)  # hear the servers' commits
            yield Watch(store)
            tg.cancel_scope.cancel()
    finally:
        await store.close()


@pytest.fixture
def crew_factory(project: Project, watch: Watch) -> Callable[..., contextlib.AbstractAsyncContextManager[Crew]]:
    """Crews; `watch` is set up first so that its task group encloses theirs."""
    del watch

    @contextlib.asynccontextmanager
    async def make(base_env: Mapping[str, str] | None = None) -> AsyncIterator[Crew]:
        store = SQLiteStore(project.db)
        await store.open()
        services = Services.create(store)
        try:
            async with contextlib.AsyncExitStack() as stack, anyio.create_task_group() as tg:
                boss = (await services.sessions.register(name="boss", role=Role.coordinator, agent="script")).session
                identity = ProcessIdentity(services, tg, session=boss)
                await identity.start()
                workers = WorkerService(
                    store,
                    services.sessions,
                    services.mail,
                    services.tasks,
                    tg,
                    project_root=project.root,
                    db=project.db,
                    base_env=base_env,
                )
                client = await stack.enter_async_context(
                    AgentClient(build_server(Runtime(services, identity, workers)))
                )
                try:
                    yield Crew(project, services, workers, client, identity, stack, tg)
                finally:
                    with anyio.CancelScope(shield=True), anyio.move_on_after(CALL_S):
                        await workers.spawner.kill_all()
                        for process in list(workers.spawner._children.values()):
                            await process.wait()  # reaped: no zombie outlives the test
                    # Not inside a cancel scope of its own: the clients' scopes were entered outside one.
                    await stack.aclose()
                    tg.cancel_scope.cancel()
        finally:
            await store.close()

    return make


@pytest.fixture
async def crew(crew_factory: Callable[..., contextlib.AbstractAsyncContextManager[Crew]]) -> AsyncIterator[Crew]:
    async with crew_factory() as c:
        yield c
