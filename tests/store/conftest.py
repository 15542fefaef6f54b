"""The store contract suite runs unchanged on every backend: this file provides the backends.

`store` is parametrized over SQLite (a file under tmp_path) and PostgreSQL (a fresh
schema per test in the server named by MAESTRO_TEST_PG, dropped afterwards).
`kit.open()` opens *another* store object on the same location: as far as the
store can tell, another process.

PostgreSQL tests do not skip: an unreachable server fails them with a message
saying how to start it, unless MAESTRO_SKIP_PG=1 says to leave them out.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest
from store_builders import session_record
from storekit import Maker, StoreKit, _probe, open_kit, pg_base_url

from maestro_mcp.models import Role, SessionRecord
from maestro_mcp.store import Store


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


@pytest.fixture(params=["sqlite", "postgres"])
async def kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreKit]:
    pg_url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    async with open_kit(request.param, tmp_path, pg_url) as k:
        yield k


@pytest.fixture
async def store(kit: StoreKit) -> Store:
    return await kit.open()


@pytest.fixture
def make_session(store: Store) -> Maker:
    """Create a session in `store` by name (optionally with a role and a parent)."""

    async def make(name: str, role: Role = Role.worker, parent: SessionRecord | None = None) -> SessionRecord:
        return await store.create_session(session_record(name, role, parent.id if parent else None))

    return make
