"""Fixtures for the spawning tests; the helpers they build on are in spawnkit.py."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import anyio
import pytest
from harness import open_team
from spawnkit import CALL_S, Crew, Project, Watch
from storekit import open_kit

from maestro_mcp.config import Settings
from maestro_mcp.models import Role
from maestro_mcp.service.workers import WorkerService
from maestro_mcp.store import ALL, create_store


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    (root / ".maestro").mkdir(parents=True)
    return Project(root)


@pytest.fixture
async def watch(project: Project) -> AsyncIterator[Watch]:
    store = create_store(project.db)
    await store.open()
    try:
        async with anyio.create_task_group() as tg:
            await store.listen(ALL, tg)  # hear the servers' commits
            yield Watch(store)
            tg.cancel_scope.cancel()
    finally:
        await store.close()


CrewFactory = Callable[..., contextlib.AbstractAsyncContextManager[Crew]]


@pytest.fixture
def crew_factory(project: Project, watch: Watch) -> CrewFactory:
    """Crews; `watch` is set up first so that its task group encloses theirs."""
    del watch

    @contextlib.asynccontextmanager
    async def make(base_env: Mapping[str, str] | None = None, config: Settings | None = None) -> AsyncIterator[Crew]:
        config = config or Settings.load({})
        async with open_kit("sqlite", project.root) as kit, open_team(kit, config) as team:
            workers = WorkerService(
                team.store,
                team.services.sessions,
                team.services.mail,
                team.services.tasks,
                team.task_group,
                project_root=project.root,
                db=project.db,
                base_env=base_env,
                config=config,
            )
            boss = await team.agent("boss", Role.coordinator, workers=workers)
            try:
                yield Crew(project, team, workers, boss.client)
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(CALL_S):
                    await workers.spawner.kill_all()
                    for process in list(workers.spawner._children.values()):
                        await process.wait()  # reaped: no zombie outlives the test

    return make


@pytest.fixture
async def crew(crew_factory: CrewFactory) -> AsyncIterator[Crew]:
    async with crew_factory() as c:
        yield c
