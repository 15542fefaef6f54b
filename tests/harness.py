"""The in-memory team: agents of one project on one store, each a real `MCPServer` reached in-process.

Every agent is built by `build_server` and reached through the SDK's in-process
client, acting as its own session (pre-registered, or registering on its first
call), all sharing one opened store: several agents of one project without
subprocesses. The same team runs on SQLite and on PostgreSQL (the `team`
fixture is parametrised over both). `StoreView` reads the store with plain SQL,
independently of the code under test.

A module of its own rather than conftest.py, so that every test directory can import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import asyncpg
import pytest
from storekit import StoreKit

from maestro_mcp.client import AgentClient, ToolCallError
from maestro_mcp.config import Settings, is_url
from maestro_mcp.models import Role, SessionRecord, TaskRecord
from maestro_mcp.server import ProcessIdentity, Registration, Runtime, build_server
from maestro_mcp.service import Services
from maestro_mcp.service.workers import WorkerService
from maestro_mcp.store import Store
from maestro_mcp.store.postgres.executor import split_url


@dataclass
class Agent:
    """One in-memory agent: its MCP client, and (once registered) its session."""

    client: AgentClient
    identity: ProcessIdentity

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
        """Call a tool that must succeed; its structured result."""
        return await self.client.call(tool, **arguments)

    async def error(self, tool: str, **arguments: Any) -> str:
        """Call a tool that must fail; the error text the model would read."""
        with pytest.raises(ToolCallError) as info:
            await self.client.call(tool, **arguments)
        return info.value.text

    # -- task shorthands ------------------------------------------------------------------------------
    async def create(self, *specs: dict[str, Any]) -> dict[str, str]:
        """task_create; returns key -> id (or title -> id for tasks without a key)."""
        created = (await self.call("task_create", tasks=list(specs)))["tasks"]
        return {(spec.get("key") or spec["title"]): t["id"] for spec, t in zip(specs, created, strict=True)}

    async def claim(self) -> dict[str, Any] | None:
        claimed: dict[str, Any] | None = (await self.call("task_ready", claim=True))["claimed"]
        return claimed

    async def inbox(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = (await self.call("mail_inbox", limit=100))["messages"]
        return messages

    async def tasks(self, **filters: Any) -> dict[str, dict[str, Any]]:
        """task_list as key (or id) -> task."""
        listed = (await self.call("task_list", **filters))["tasks"]
        return {(t["key"] or t["id"]): t for t in listed}


class Team:
    """Agents of one project on one store, each with its own server and identity (like its own process)."""

    def __init__(
        self,
        store: Store,
        location: str,
        task_group: anyio.abc.TaskGroup,
        stack: contextlib.AsyncExitStack,
        config: Settings,
    ) -> None:
        self.store = store
        self.location = location
        """Where the store is (a URL with its password, unlike `store.location`)."""
        self.services = Services.create(store, config)
        self._tg = task_group
        self._stack = stack

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        """Where the agents' listeners (and a spawner's watchers) run: as long as the team."""
        return self._tg

    @property
    def view(self) -> StoreView:
        return StoreView(self.location)

    async def agent(
        self,
        name: str | None,
        role: Role = Role.coordinator,
        parent: str | None = None,
        *,
        lazy: bool = False,
        agent: str = "script",
        workers: WorkerService | None = None,
    ) -> Agent:
        """A pre-registered session's agent, or with `lazy` one that registers on its first tool call.
        With `workers`, it can spawn (a coordinator whose spawner starts real processes)."""
        if lazy:
            identity = ProcessIdentity(
                self.services, self._tg, registration=Registration(name=name, role=role, parent=parent, agent=agent)
            )
        else:
            registered = await self.services.sessions.register(name=name, role=role, agent=agent, parent=parent)
            identity = ProcessIdentity(self.services, self._tg, session=registered.session)
        await identity.start()
        server = build_server(Runtime(self.services, identity, workers))
        client = await self._stack.enter_async_context(AgentClient(server))
        return Agent(client, identity)

    async def boss(self, name: str = "boss") -> Agent:
        return await self.agent(name, Role.coordinator)

    async def member(self, name: str, role: Role = Role.worker, parent: str | None = "boss") -> Agent:
        return await self.agent(name, role, parent if role is not Role.coordinator else None)

    async def another_server_for(self, agent: Agent) -> Agent:
        """A second server acting as the same session (as if the agent had been resumed elsewhere too)."""
        identity = ProcessIdentity(self.services, self._tg, session=agent.session)
        client = await self._stack.enter_async_context(AgentClient(build_server(Runtime(self.services, identity))))
        return Agent(client, identity)

    async def stored(self) -> list[TaskRecord]:
        """Every task as the store has it, read without going through the tools."""
        return await self.store.list_tasks()

    async def session_status(self, name: str) -> str:
        record = await self.store.get_session(name)
        assert record is not None
        return record.status.value


@contextlib.asynccontextmanager
async def open_team(kit: StoreKit, config: Settings | None = None) -> AsyncIterator[Team]:
    """A team on another store object at `kit`'s location (a second one stands for another process)."""
    store = await kit.open()
    async with contextlib.AsyncExitStack() as stack, anyio.create_task_group() as tg:
        team = Team(store, kit.location, tg, stack, config or Settings.load({}))
        try:
            yield team
            await stack.aclose()  # the agents' clients first, while their listeners still run
        finally:
            tg.cancel_scope.cancel()  # the wake-up listeners


class StoreView:
    """A raw, read-only look at a store (a SQLite file or a PostgreSQL URL), independent of the code under test.

    SQL is written with ``?`` placeholders; for PostgreSQL they become ``$1``… and the query runs on a
    connection of its own, on a thread of its own (the view is synchronous, like the sqlite3 one)."""

    def __init__(self, location: str) -> None:
        self.location = location

    def _rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return [tuple(r.values()) for r in self._dicts(sql, *params)]

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Any read, for tests that check what their own SQL says (`?` placeholders)."""
        return self._rows(sql, *params)

    def _dicts(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        if not is_url(self.location):
            conn = sqlite3.connect(self.location, timeout=30)
            conn.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in conn.execute(sql, params).fetchall()]
            finally:
                conn.close()
        numbered = iter(range(1, 1000))
        pg_sql = re.sub(r"\?", lambda _m: f"${next(numbered)}", sql)
        dsn, schema = split_url(self.location)

        async def query() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(dsn, server_settings={"search_path": schema} if schema else None)
            try:
                return [dict(r) for r in await conn.fetch(pg_sql, *params)]
            finally:
                await conn.close()

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, query()).result(timeout=30)

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
            "tasks": self._rows("SELECT * FROM tasks ORDER BY id"),
            "task_deps": self._rows("SELECT * FROM task_deps ORDER BY 1, 2"),
            "reports": self._rows("SELECT * FROM reports ORDER BY id"),
            "approvals": self._rows("SELECT * FROM approvals ORDER BY id"),
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
        found = self._dicts("SELECT * FROM sessions WHERE name = ?", name)
        return found[0] if found else None

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
            " JOIN sessions s ON s.id = r.session_id WHERE s.name = ? AND r.status != 'sent' ORDER BY m.seq",
            name,
        )
        return [r[0] for r in rows]
