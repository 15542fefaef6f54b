"""Shared fixtures: an in-memory team of agents on one SQLite store, and a raw view of that store.

Every in-memory agent is a real `MCPServer` built by `build_server`, reached through
`mcp.Client` in-process, all sharing one opened `SQLiteStore`: several agents of one
project, without subprocesses. Real-process tests live in test_processes.py.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from maestro_mcp.client import AgentClient, ToolCallError
from maestro_mcp.models import Role, SessionRecord
from maestro_mcp.server import ProcessIdentity, Registration, Runtime, build_server
from maestro_mcp.service import Services
from maestro_mcp.store.sqlite import SQLiteStore


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Agent:
    """One in-memory agent: its MCP client, and (once registered) its session."""

    client: AgentClient
    identity: ProcessIdentity
    team: Team

    @property
    def session(self) -> SessionRecord:
        assert self.identity.session is not None, "this agent has not registered yet"
        return self.identity.session

    @property
    def id(self) -> str:
        return self.session.id

    @property
    def name(self) -> str:
        return self.session.name

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        return await self.client.call(tool, **arguments)

    async def error(self, tool: str, **arguments: Any) -> str:
        """Call a tool that must fail; return the error text the model would read."""
        with pytest.raises(ToolCallError) as info:
            await self.client.call(tool, **arguments)
        return info.value.text


class Team:
    """Several agents on one store, each with its own server and identity (like its own process)."""

    def __init__(self, store: SQLiteStore, task_group: anyio.abc.TaskGroup, stack: contextlib.AsyncExitStack) -> None:
        self.store = store
        self.services = Services.create(store)
        self._tg = task_group
        self._stack = stack

    @property
    def db(self) -> str:
        return self.store.path

    async def agent(
        self,
        name: str | None,
        role: Role = Role.coordinator,
        parent: str | None = None,
        *,
        lazy: bool = False,
        agent: str = "script",
    ) -> Agent:
        """A pre-registered session's agent, or with `lazy` one that registers on its first tool call."""
        if lazy:
            identity = ProcessIdentity(
                self.services,
                self._tg,
                registration=Registration(name=name, role=role, parent=parent, agent=agent),
            )
        else:
            registered = await self.services.sessions.register(name=name, role=role, agent=agent, parent=parent)
            identity = ProcessIdentity(self.services, self._tg, session=registered.session)
        await identity.start()
        client = await self._stack.enter_async_context(AgentClient(build_server(Runtime(self.services, identity))))
        return Agent(client, identity, self)

    async def another_server_for(self, agent: Agent) -> Agent:
        """A second server acting as the same session (as if the agent had been resumed elsewhere too)."""
        identity = ProcessIdentity(self.services, self._tg, session=agent.session)
        client = await self._stack.enter_async_context(AgentClient(build_server(Runtime(self.services, identity))))
        return Agent(client, identity, self)

    @property
    def view(self) -> StoreView:
        return StoreView(self.db)


@pytest.fixture
def team_factory(tmp_path: Path) -> Callable[..., contextlib.AbstractAsyncContextManager[Team]]:
    @contextlib.asynccontextmanager
    async def make(filename: str = "maestro.db") -> AsyncIterator[Team]:
        store = SQLiteStore(str(tmp_path / ".maestro" / filename))
        await store.open()
        try:
            async with anyio.create_task_group() as tg:
                try:
                    async with contextlib.AsyncExitStack() as stack:
                        yield Team(store, tg, stack)
                finally:
                    tg.cancel_scope.cancel()  # the wake-up listeners
        finally:
            await store.close()

    return make


@pytest.fixture
async def team(team_factory: Callable[..., contextlib.AbstractAsyncContextManager[Team]]) -> AsyncIterator[Team]:
    async with team_factory() as t:
        yield t


class StoreView:
    """A raw, read-only look at a store file, independent of the code under test."""

    def __init__(self, db: str) -> None:
        self.db = db

    def _rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row that matters, to show that a refused call changed nothing.

        `last_seen_at` is left out: it records activity, not state.
        """
        return {
            "sessions": self._rows(
                "SELECT id, name, role, agent, parent_id, status, pid, token_hash, ended_at, exit_code"
                " FROM sessions ORDER BY id"
            ),
            "messages": self._rows("SELECT * FROM messages ORDER BY seq"),
            "receipts": self._rows("SELECT * FROM receipts ORDER BY session_id, message_seq"),
        }

    def receipts(self, message_id: str) -> dict[str, str]:
        """recipient name -> receipt status of one message."""
        rows = self._rows(
            "SELECT s.name, r.status FROM receipts r JOIN messages m ON m.seq = r.message_seq"
            " JOIN sessions s ON s.id = r.session_id WHERE m.id = ?",
            message_id,
        )
        return {name: status for name, status in rows}

    def count(self, table: str) -> int:
        return int(self._rows(f"SELECT COUNT(*) FROM {table}")[0][0])

    def session(self, name: str) -> dict[str, Any] | None:
        conn = sqlite3.connect(self.db, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            row = conn.execute("SELECT * FROM sessions WHERE name = ?", (name,)).fetchone()
            return dict(row) if row else None
        finally:
            conn.close()

    def status(self, name: str) -> str:
        row = self.session(name)
        assert row is not None, f"no session {name!r} in the store"
        return str(row["status"])

    def pid(self, name: str) -> int:
        row = self.session(name)
        assert row is not None and row["pid"], f"no pid recorded for {name!r}"
        return int(row["pid"])

    def bodies(self) -> list[str]:
        """The body of every stored message, in the order they were stored."""
        return [body for (body,) in self._rows("SELECT body FROM messages ORDER BY seq")]

    def bodies_received_by(self, name: str) -> list[str]:
        """Bodies of messages whose receipt for `name` is delivered or acked."""
        rows = self._rows(
            "SELECT m.body FROM receipts r JOIN messages m ON m.seq = r.message_seq"
            " JOIN sessions s ON s.id = r.session_id WHERE s.name = ? AND r.status != 'sent'",
            name,
        )
        return [r[0] for r in rows]


@pytest.fixture
def store_view() -> type[StoreView]:
    return StoreView
