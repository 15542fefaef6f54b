"""SQL written once: statements with named parameters and dialect tokens, rendered per backend.

A `Statement` is the text every backend runs. Two things in it vary by backend:

- parameters are written ``:name`` and rendered as the backend's placeholders
  (``?1`` for SQLite, ``$1`` for PostgreSQL), values passed by name;
- a token ``{NAME}`` or ``{NAME argument ...}`` stands for what the backends spell
  differently: type names in table definitions (``{REAL}``, ``{LIST}``), a list
  parameter in a condition (``{IN :ids}``) or as rows (``{EACH :ids}``), row locks
  (``{FOR_UPDATE}``), whole catalogue statements (``{COLUMNS}``).

A `Dialect` holds the token table and how values are stored (lists as JSON text
or arrays, flags as 0/1 or booleans). Rendering is cached per statement text,
so dynamic statements built from fixed fragments cost one render each.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

TOKEN = re.compile(r"\{([A-Z][A-Z0-9_]*)((?: [^{} ]+)*)\}")
# `:name`, but not `::type` casts or a colon inside a word.
PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")

Fetch = Literal["all", "one", "value", "count", "none"]


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement, shared by every backend."""

    text: str

    def all(self, **params: Any) -> Query:
        """Every row (a list)."""
        return Query(self, params, "all")

    def one(self, **params: Any) -> Query:
        """The first row, or None."""
        return Query(self, params, "one")

    def value(self, **params: Any) -> Query:
        """The first column of the first row, or None."""
        return Query(self, params, "value")

    def count(self, **params: Any) -> Query:
        """How many rows the statement changed."""
        return Query(self, params, "count")

    def run(self, **params: Any) -> Query:
        """Run it for its effect only."""
        return Query(self, params, "none")


@dataclass(frozen=True, slots=True)
class Query:
    """A statement with its parameters and what the step wants back: what a step yields."""

    statement: Statement
    params: Mapping[str, Any]
    fetch: Fetch


@dataclass(frozen=True, slots=True)
class Rendered:
    """A statement in one dialect: its text and the parameter names in placeholder order."""

    sql: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Dialect:
    """How one backend spells what the statements leave open."""

    name: str
    placeholder: Callable[[int], str]
    """The n-th (1-based) parameter's placeholder."""
    tokens: Mapping[str, str]
    """Token name -> template; ``{0}``, ``{1}`` … are the token's arguments."""
    lists_as_json: bool
    """Lists (and list parameters) are stored as JSON text rather than arrays."""
    flags_as_int: bool
    """Booleans are stored as 0/1 rather than a boolean type."""
    _cache: dict[str, Rendered] = field(default_factory=dict, compare=False, repr=False)

    def render(self, statement: Statement | str) -> Rendered:
        text = statement.text if isinstance(statement, Statement) else statement
        found = self._cache.get(text)
        if found is None:
            found = self._cache[text] = self._render(text)
        return found

    def _render(self, text: str) -> Rendered:
        def token(match: re.Match[str]) -> str:
            name, args = match[1], match[2].split()
            if name not in self.tokens:
                raise KeyError(f"the {self.name} dialect has no token {{{name}}} (in {text!r})")
            return self.tokens[name].format(*args)

        expanded = text
        while TOKEN.search(expanded):  # a token may expand to text holding another
            expanded = TOKEN.sub(token, expanded)
        names: list[str] = []

        def param(match: re.Match[str]) -> str:
            if match[1] not in names:
                names.append(match[1])
            return self.placeholder(names.index(match[1]) + 1)

        return Rendered(PARAM.sub(param, expanded), tuple(names))

    def encode(self, value: Any) -> Any:
        """A parameter value as this backend stores it."""
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, bool):
            return int(value) if self.flags_as_int else value
        if isinstance(value, list | tuple):
            if self.lists_as_json:
                return _json_list(value)
            return list(value)
        return value

    def args(self, rendered: Rendered, params: Mapping[str, Any]) -> list[Any]:
        try:
            return [self.encode(params[name]) for name in rendered.names]
        except KeyError as exc:
            raise KeyError(f"no value for parameter :{exc.args[0]} of {rendered.sql!r}") from None


def _json_list(values: Sequence[Any]) -> str:
    return json.dumps([v.value if isinstance(v, enum.Enum) else v for v in values])


@functools.cache
def statement(text: str) -> Statement:
    """A statement built at run time from fixed fragments (filters, SET lists): one object per text."""
    return Statement(text)


def as_list(value: Any) -> list[Any]:
    """A stored list as Python: JSON text (SQLite), an array (PostgreSQL), or NULL (an empty aggregate)."""
    if value is None:
        return []
    if isinstance(value, str):
        return list(json.loads(value))
    return list(value)


def where(clauses: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""
