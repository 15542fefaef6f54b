"""Shared fixtures: the backends every store-facing test runs on, and the in-memory team (see harness.py).

`backend` is parametrised over SQLite (a file under tmp_path) and PostgreSQL (a fresh
schema per store in the server named by MAESTRO_TEST_PG, dropped afterwards), so a
test that takes `team` (or `kit`) runs on both. PostgreSQL tests do not skip: an
unreachable server fails them with a message saying how to start it, unless
MAESTRO_SKIP_PG=1 says to leave them out.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest
from harness import StoreView, Team, open_team
from storekit import StoreKit, _probe, open_kit, pg_base_url

from maestro_mcp.config import Settings

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The test server's URL, after checking once that it answers."""
    url = pg_base_url()
    if os.environ.get("MAESTRO_SKIP_PG") == "1":
        pytest.skip("MAESTRO_SKIP_PG=1: PostgreSQL tests left out on purpose")
    # In a thread of its own: this fixture may first be needed inside a running event loop.
    with ThreadPoolExecutor(1) as pool:
        problem = pool.submit(anyio.run, _probe, url).result()
    if problem is not None:
        pytest.fail(
            f"PostgreSQL at {url} is unreachable ({problem}). Start it with"
            " `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, point MAESTRO_TEST_PG"
            " at another server, or set MAESTRO_SKIP_PG=1 to leave the PostgreSQL tests out.",
            pytrace=False,
        )
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        request.getfixturevalue("pg_url")
    return str(request.param)


@pytest.fixture
async def kit(backend: str, tmp_path: Path) -> AsyncIterator[StoreKit]:
    """A fresh store location on `backend`; `kit.open()` opens another store object on it (another "process")."""
    async with open_kit(backend, tmp_path, pg_base_url() if backend == "postgres" else None) as k:
        yield k


TeamFactory = Callable[..., contextlib.AbstractAsyncContextManager[Team]]


@pytest.fixture
async def team_factory(backend: str, tmp_path: Path) -> AsyncIterator[TeamFactory]:
    """Teams by store name: two teams of one name share a store, as two processes would."""
    async with contextlib.AsyncExitStack() as kits:
        found: dict[str, StoreKit] = {}

        @contextlib.asynccontextmanager
        async def make(name: str = "", config: Settings | None = None) -> AsyncIterator[Team]:
            """The team on store `name` (default: tmp_path/.maestro/maestro.db, the project of the test)."""
            if name not in found:
                pg = pg_base_url() if backend == "postgres" else None
                found[name] = await kits.enter_async_context(open_kit(backend, tmp_path / name, pg))
            async with open_team(found[name], config) as team:
                yield team

        yield make


@pytest.fixture
async def team(team_factory: TeamFactory) -> AsyncIterator[Team]:
    async with team_factory() as t:
        yield t


@pytest.fixture
def store_view() -> type[StoreView]:
    return StoreView
