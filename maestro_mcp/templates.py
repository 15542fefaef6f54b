"""``{{ params.KEY }}`` and ``{{ state.KEY }}`` placeholders in a task's text, and how values read there.

Pure text handling, shared by the run-plan reader (params, when the plan is read) and the task service
(state, when the task is handed out or claimed)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
NAME = re.compile(r"^(params|state)\.([A-Za-z0-9_][A-Za-z0-9_.:@-]*)$")


def substitute(text: str, lookup: Callable[[str, str], str | None]) -> tuple[str, list[str]]:
    """`text` with each ``{{ ns.KEY }}`` replaced by `lookup(ns, KEY)`; the placeholders it could not fill."""
    missing: list[str] = []

    def one(match: re.Match[str]) -> str:
        name = NAME.match(match[1])
        value = lookup(name[1], name[2]) if name else None
        if value is None:
            missing.append(match[0])
            return match[0]
        return value

    return VARIABLE.sub(one, text), missing


def state_keys(text: str) -> list[str]:
    """The shared-state keys `text` names as ``{{ state.KEY }}``, in order."""
    return [name[2] for match in VARIABLE.finditer(text) if (name := NAME.match(match[1])) and name[1] == "state"]


def state_text(value: str) -> str:
    """A state value (JSON text) as it reads inside a task's text: a string unquoted, anything else as JSON."""
    decoded = json.loads(value)
    return decoded if isinstance(decoded, str) else json.dumps(decoded)
