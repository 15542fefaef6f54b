"""Bounds on everything an agent can store, checked in one place with one kind of message.

Every agent shares the store, so one agent's oversized task would be every agent's problem: a single
task with a 10 MB acceptance text once made each `task_list` return 51 MB. Limits are refused, never
truncated (half a text is worse than an error), and each error names the field and the limit.

NUL characters are refused everywhere: SQLite would store them and PostgreSQL would not, so a store
holding one could never be moved to PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from maestro_mcp.errors import InvalidArgument

MAX_TEXT = 64 * 1024
"""A description, acceptance criteria, a result, a mail body: bytes of UTF-8."""
MAX_TITLE = 300
MAX_ITEMS = 500
"""Entries of `files` or `artifacts`."""
MAX_ITEM = 1024
"""Characters of one such entry (a path or a link)."""
MAX_PRIORITY = 1_000_000


def text(field: str, value: str, limit: int = MAX_TEXT, *, chars: bool = False) -> str:
    """`value` if it fits: at most `limit` bytes of UTF-8 (or characters, with `chars`), no NUL."""
    if "\x00" in value:
        raise InvalidArgument(f"`{field}` contains a NUL character.", "Remove it; maestro stores plain text.")
    size = len(value) if chars else len(value.encode("utf-8", "surrogatepass"))
    if size > limit:
        unit = "characters" if chars else "bytes"
        raise InvalidArgument(
            f"`{field}` is {size} {unit}; the limit is {limit}.",
            "Summarise it and put the rest in a file in the workspace, named in the text.",
        )
    return value


def items(field: str, values: Sequence[str], limit: int = MAX_ITEMS, each: int = MAX_ITEM) -> list[str]:
    """A list of short texts (paths, links): at most `limit` of them, each at most `each` characters."""
    if len(values) > limit:
        raise InvalidArgument(
            f"`{field}` has {len(values)} entries; the limit is {limit}.", "Name directories or globs instead."
        )
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidArgument(f"`{field}[{i}]` is not text.", "Pass a list of strings.")
        text(f"{field}[{i}]", value, each, chars=True)
    return list(values)


def integer(field: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"`{field}` must be a whole number, not {value!r}.", f"Use {low} to {high}.")
    if not low <= value <= high:
        raise InvalidArgument(f"`{field}`={value} is out of range.", f"Use {low} to {high}.")
    return value
