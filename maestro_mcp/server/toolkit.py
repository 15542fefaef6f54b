"""How maestro's tools become MCP tools: declared once with their roles and hints, built the same way.

Every tool module declares its tools on a `ToolSet` (`@tools.tool(read_only=True)`), and
`ToolSet.build` turns each into a `MaestroTool`, the SDK's `Tool` with maestro's rules applied in
one place, so a tool added later gets them without asking:

* portable, compact schemas (`portable.py`);
* the text part of a result is compact JSON, beside the same data as `structuredContent`;
* wrong arguments are one line naming the argument (`arg_errors.py`);
* a tool for coordinators, called by another role, says so and what to do instead.

`ListedByRole` hides from `tools/list` what the caller's role cannot use: an agent pays for every
listed tool in every request. Hidden tools stay callable, and answer with that clear refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pydantic_core
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from maestro_mcp.errors import MaestroError
from maestro_mcp.models import Role

from . import portable
from .arg_errors import argument_error

EVERYONE = frozenset(Role)
COORDINATORS = frozenset({Role.coordinator, Role.operator})

Gate = Callable[[Context[Any, Any], str, frozenset[Role]], Awaitable[None]]
"""Raises a ToolError when the caller's role is not among the tool's roles."""

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ToolSpec:
    fn: Callable[..., Any]
    roles: frozenset[Role]
    annotations: ToolAnnotations | None
    structured: bool


log = logging.getLogger(__name__)


class ToolSet:
    """The tools of one server, declared by the tool modules before the server is built."""

    def __init__(self) -> None:
        self.specs: list[ToolSpec] = []

    def tool(
        self,
        *,
        roles: frozenset[Role] = EVERYONE,
        read_only: bool = False,
        destructive: bool = False,
        idempotent: bool = False,
        structured: bool = True,
    ) -> Callable[[_F], _F]:
        """Declare a tool. `read_only` tools change nothing the caller would undo (reading mail only
        records that it was read); tools that are not read-only say whether they destroy anything,
        since MCP clients assume a tool without hints may."""
        if read_only:
            hints = ToolAnnotations(read_only_hint=True)
        else:
            hints = ToolAnnotations(destructive_hint=destructive, idempotent_hint=idempotent or None)

        def decorator(fn: _F) -> _F:
            self.specs.append(ToolSpec(fn, roles, hints, structured))
            return fn

        return decorator

    def build(self, gate: Gate) -> list[Tool]:
        return [MaestroTool.create(spec, gate) for spec in self.specs]

    def roles(self) -> dict[str, frozenset[Role]]:
        return {spec.fn.__name__: spec.roles for spec in self.specs}


class MaestroTool(Tool):
    roles: frozenset[Role] = Field(default=EVERYONE, exclude=True)
    gate: Gate | None = Field(default=None, exclude=True)

    @classmethod
    def create(cls, spec: ToolSpec, gate: Gate) -> MaestroTool:
        tool = cls.from_function(
            spec.fn,
            description=portable.compact(spec.fn.__doc__),
            annotations=spec.annotations,
            structured_output=spec.structured,
        )
        assert isinstance(tool, MaestroTool)  # from_function builds `cls`; its annotation says Tool
        tool.roles = spec.roles
        tool.gate = gate
        tool.parameters = portable.input_schema(tool.parameters)
        if tool.fn_metadata.output_schema is not None:
            # Read by the SDK on every tools/list (results are built here, below, not validated again).
            tool.fn_metadata.output_schema = portable.output_schema(tool.fn_metadata.output_schema)
        return tool

    async def run(self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool = False) -> Any:
        if self.gate is not None and self.roles != EVERYONE:
            await self.gate(context, self.name, self.roles)
        for name, value in arguments.items():
            # pydantic's lax mode reads true as 1: `limit=true` would list one task without a word.
            if isinstance(value, bool) and _numeric(self.parameters.get("properties", {}).get(name)):
                raise ToolError(f"`{name}` must be a number, not {str(value).lower()}.")
        try:
            result = await super().run(arguments, context, convert_result=False)
        except UnexpectedToolError:
            raise
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(argument_error(cause, self.parameters)) from cause
            if isinstance(cause, ToolError | MaestroError):
                raise ToolError(str(cause)) from cause  # without the SDK's "Error executing tool …" prefix
            if isinstance(cause, Exception):
                # A failure nobody foresaw: the model still gets what failed and what to do, and the
                # server's log gets the traceback (a bare "Error executing tool X" helped neither).
                log.error("%s failed", self.name, exc_info=cause)
                raise ToolError(
                    f"{self.name} failed inside maestro ({type(cause).__name__}: {cause})."
                    " Its server logged the details; try again, and tell the operator if it fails again."
                ) from cause
            raise
        if not convert_result:
            return result
        if isinstance(result, BaseModel):
            data = result.model_dump(mode="json")
            text = pydantic_core.to_json(data).decode()
            return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)
        return self.fn_metadata.convert_result(result)


def _numeric(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return any(k in ("integer", "number") for k in kinds) and "boolean" not in kinds


class RoleSource(Protocol):
    def listed_role(self, request: Any) -> Role:
        """The role whose tools a `tools/list` from this request shows."""
        ...


class ListedByRole:
    """Server middleware: `tools/list` shows only the tools of the caller's role."""

    def __init__(self, source: RoleSource, roles: dict[str, frozenset[Role]]) -> None:
        self.source = source
        self.roles = roles

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "tools/list" or not isinstance(result, dict):
            return result
        role = self.source.listed_role(ctx.request)
        tools: Iterable[dict[str, Any]] = result.get("tools", [])
        return {**result, "tools": [t for t in tools if role in self.roles.get(t.get("name", ""), EVERYONE)]}
