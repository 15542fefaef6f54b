"""Backends for the store contract suite: locations, extra store objects, PostgreSQL schemas.

A module of its own, not conftest.py, so that tests can import it: several test directories have a
conftest.py, and a bare `from harness import ...` would get whichever was imported first.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import asyncpg

from maestro_mcp.models import SessionRecord
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


Maker = Callable[..., Awaitable[SessionRecord]]
