"""Fixtures for the task-DAG tests: a crew of in-memory agents sharing one SQLite store.

Each member is a real `MCPServer` (built by `build_server`) reached through the SDK's
in-process `Client`, acting as its own pre-registered session, so tool logic is tested
exactly as an agent calls it, without subprocesses.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from mcp import Client

from maestro_mcp.models import Role, SessionRecord, TaskRecord
from maestro_mcp.server import ProcessIdentity, Runtime, build_server
from maestro_mcp.service import Services
from maestro_mcp.store import Store, create_store

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PLANS = REPO / "examples" / "plans"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class ToolFailed(AssertionError):
    """A tool call that had to succeed returned an error."""


@dataclass
class Member:
    """One agent of the crew: its session and its MCP client."""

    client: Client
    identity: ProcessIdentity

    @property
    def session(self) -> SessionRecord:
        assert self.identity.session is not None
        return self.identity.session

    @property
    def id(self) -> str:
        return self.session.id

    @property
    def name(self) -> str:
        return self.session.name

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """Call a tool that must succeed; return its structured result."""
        result = await self.client.call_tool(tool, arguments)
        if result.is_error:
            raise ToolFailed(f"{tool} failed: {_text(result)}")
        return dict(result.structured_content or {})

    async def fail(self, tool: str, **arguments: Any) -> str:
        """Call a tool that must be refused; return the error text the model would read."""
        result = await self.client.call_tool(tool, arguments)
        assert result.is_error, f"{tool} should have been refused, got {result.structured_content}"
        return _text(result)

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


def _text(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


class Crew:
    """Agents of one project on one store, each with its own server and identity."""

    def __init__(self, store: Store, task_group: anyio.abc.TaskGroup, stack: contextlib.AsyncExitStack) -> None:
        self.store = store
        self.services = Services.create(store)
        self._tg = task_group
        self._stack = stack

    async def member(self, name: str, role: Role = Role.worker, parent: str | None = "boss") -> Member:
        registered = await self.services.sessions.register(
            name=name, role=role, agent="script", parent=parent if role is not Role.coordinator else None
        )
        identity = ProcessIdentity(self.services, self._tg, session=registered.session)
        await identity.start()
        client = await self._stack.enter_async_context(Client(build_server(Runtime(self.services, identity))))
        return Member(client, identity)

    async def boss(self, name: str = "boss") -> Member:
        return await self.member(name, Role.coordinator, None)

    async def stored(self) -> list[TaskRecord]:
        """Every task as the store has it, read without going through the tools."""
        return await self.store.list_tasks()

    async def session_status(self, name: str) -> str:
        record = await self.store.get_session(name)
        assert record is not None
        return record.status.value


@contextlib.asynccontextmanager
async def open_crew(db: Path) -> AsyncIterator[Crew]:
    store = create_store(str(db))
    await store.open()
    try:
        async with contextlib.AsyncExitStack() as stack, anyio.create_task_group() as tg:
            yield Crew(store, tg, stack)
            await stack.aclose()
            tg.cancel_scope.cancel()
    finally:
        await store.close()


@pytest.fixture
async def crew(tmp_path: Path) -> AsyncIterator[Crew]:
    async with open_crew(tmp_path / "maestro.db") as c:
        yield c


@pytest.fixture
async def boss(crew: Crew) -> Member:
    return await crew.boss()
