"""What a worker is doing, normalised across agent CLIs: one stream of activity events per worker.

Each adapter parses its CLI's structured output (Claude `--output-format stream-json`, Codex `exec
--json`, Gemini `-o stream-json`) into these events: the start of a conversation, a model turn, a tool
call (its name and a short summary of its arguments), a tool result (ok or not), usage (tokens, and
dollars where the CLI reports them), an error, the exit. Usage events carry increments, never running
totals, so they can be summed per worker, per task and per team.

Everything here is what a human or a coordinator may be shown, so everything passes `redact`: no API
key, token or value of the worker's secret environment variables survives into a summary.
"""

from __future__ import annotations

import abc
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from maestro_mcp.models import ActivityKind

SUMMARY_CHARS = 200


Kind = ActivityKind
"""The kinds of events; `start` carries the CLI's conversation id, for a later resume."""


@dataclass
class Activity:
    kind: Kind
    summary: str = ""
    tool: str = ""
    ok: bool | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = None
    """Dollars the CLI itself reported for this increment; None when it reports only tokens."""
    turns: int = 0
    model: str = ""
    conversation_id: str = ""
    extra: dict[str, object] = field(default_factory=dict)


class Parser(abc.ABC):
    """Turns one worker's output lines into activity; stateful (running totals become increments).

    A line that is not valid JSON, or not an event this CLI emits, is skipped and counted, never an
    error: a CLI's progress text, a truncated last line after a kill, and future event types all pass."""

    def __init__(self) -> None:
        self.skipped = 0
        self._totals: dict[str, float] = {}

    def feed(self, line: str) -> list[Activity]:
        text = line.strip()
        if not text:
            return []
        try:
            event = json.loads(text)
        except ValueError:
            self.skipped += 1
            return []
        if not isinstance(event, dict):
            self.skipped += 1
            return []
        try:
            found = self.parse(event)
        except (KeyError, TypeError, ValueError, AttributeError):
            found = None
        if found is None:
            self.skipped += 1
            return []
        return found

    @abc.abstractmethod
    def parse(self, event: dict[str, Any]) -> list[Activity] | None:
        """The activity of one event of this CLI (None: not an event it knows, to be counted as skipped)."""

    def increment(self, name: str, total: float | None) -> float:
        """The growth of a running total since the last report of it (CLIs report totals, not increments)."""
        if total is None:
            return 0.0
        grown = max(0.0, float(total) - self._totals.get(name, 0.0))
        self._totals[name] = max(float(total), self._totals.get(name, 0.0))
        return grown


def short(text: str, limit: int = SUMMARY_CHARS) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


_SHELL_WRAPPER = re.compile(r"^(?:/bin/)?(?:ba|z)?sh\s+-l?c\s+")


def unwrap_shell(command: str) -> str:
    """`/bin/bash -lc 'pytest -q'` (as Codex reports its commands) -> `pytest -q`."""
    match = _SHELL_WRAPPER.match(command)
    if not match:
        return command
    rest = command[match.end() :]
    try:
        words = shlex.split(rest)
    except ValueError:
        return rest
    return words[0] if len(words) == 1 else rest


def action(tool: str, *, command: str = "", path: str = "", mcp: str = "") -> str:
    """What a tool call is doing, in words: "running pytest -q", "editing kv/api.py"."""
    if command:
        return short(f"running {unwrap_shell(command)}")
    if mcp:
        return short(f"calling {mcp} {tool}")
    lowered = tool.lower()
    verb = "using"
    if any(w in lowered for w in ("read", "view", "glob", "grep", "search", "list", "ls")):
        verb = "reading"
    if any(w in lowered for w in ("edit", "write", "replace", "patch", "notebook")):
        verb = "editing"
    if any(w in lowered for w in ("fetch", "web")):
        verb = "fetching"
    return short(f"{verb} {path}" if path else f"{verb} {tool}")


# Values that look like credentials, whatever variable they came from.
_SECRET_SHAPES = re.compile(
    r"(sk-[A-Za-z0-9_\-]{12,}|sk-ant-[A-Za-z0-9_\-]{8,}|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_\-]{30,}|xox[baprs]-[A-Za-z0-9\-]{10,}|eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]+"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-]{12,})"
)
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|AUTH|CREDENTIAL|COOKIE|PRIVATE", re.IGNORECASE)
_ASSIGNMENT = re.compile(r"\b([A-Z][A-Z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD|AUTH)[A-Z0-9_]*)=(\S+)")


class Redactor:
    """Removes secrets from text shown to humans: the values of the worker's secret-named environment
    variables, anything shaped like a known kind of key, and `NAME_TOKEN=value` assignments."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        values = [v for k, v in (env or {}).items() if _SECRET_NAME.search(k) and len(v) >= 6]
        self._values = sorted(set(values), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, "***")
        text = _SECRET_SHAPES.sub("***", text)
        return _ASSIGNMENT.sub(lambda m: f"{m.group(1)}=***", text)


def redact_all(activities: Iterable[Activity], redact: Redactor) -> list[Activity]:
    out = []
    for a in activities:
        a.summary = redact(a.summary)
        out.append(a)
    return out
