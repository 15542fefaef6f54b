"""The store contract suite runs unchanged on every backend: this file provides the backends.

`store` is parametrized over SQLite (a file under tmp_path) and PostgreSQL (a fresh
schema per test in the server named by MAESTRO_TEST_PG, dropped afterwards).
`kit.open()` opens *another* store object on the same location: as far as the
store can tell, another process.

PostgreSQL tests do not skip: an unreachable server fails them with a message
saying how to start it, unless MAESTRO_SKIP_PG=1 says to leave them out.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import asyncpg
import pytest
from store_builders import session_record

from maestro_mcp.models import Role, SessionRecord
from maestro_mcp.store import Store, create_store

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def pg_base_url() -> str:
    return os.environ.get("MAESTRO_TEST_PG") or DEFAULT_PG


def with_params(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in params] + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _probe(url: str) -> str | None:
    try:
        with anyio.fail_after(5):
            conn = await asyncpg.connect(url)
        await conn.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


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


async def drop_schema(url: str, schema: str) -> None:
    with anyio.fail_after(30):
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@dataclass
class StoreKit:
    """One backend location, and every store object opened on it (closed at teardown)."""

    backend: str
    location: str
    opened: list[Store] = field(default_factory=list)

    async def open(self) -> Store:
        store = create_store(self.location)
        await store.open()
        self.opened.append(store)
        return store


@contextlib.asynccontextmanager
async def open_kit(backend: str, tmp_path: Path, pg_url: str | None = None) -> AsyncIterator[StoreKit]:
    """A fresh location for `backend` (a PostgreSQL schema is dropped afterwards)."""
    schema: str | None = None
    if backend == "sqlite":
        location = str(tmp_path / ".maestro" / "maestro.db")
    else:
        assert pg_url is not None
        schema = f"t_{secrets.token_hex(6)}"
        location = with_params(pg_url, schema=schema)
    kit = StoreKit(backend, location)
    try:
        yield kit
    finally:
        with anyio.CancelScope(shield=True):
            for store in kit.opened:
                await store.close()
            if schema is not None:
                await drop_schema(pg_base_url(), schema)


@pytest.fixture(params=["sqlite", "postgres"])
async def kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreKit]:
    pg_url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    async with open_kit(request.param, tmp_path, pg_url) as k:
        yield k


@pytest.fixture
async def store(kit: StoreKit) -> Store:
    return await kit.open()


Maker = Callable[..., Awaitable[SessionRecord]]


@pytest.fixture
def make_session(store: Store) -> Maker:
    """Create a session in `store` by name (optionally with a role and a parent)."""

    async def make(name: str, role: Role = Role.worker, parent: SessionRecord | None = None) -> SessionRecord:
        return await store.create_session(session_record(name, role, parent.id if parent else None))

    return make
