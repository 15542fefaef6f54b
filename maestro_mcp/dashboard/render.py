"""HTML from the board: a page is a frame plus named sections, and a live update replaces one section.

Templates escape everything by default (agent-written mail, task text and logs may hold markup
or script); nothing agent-written is ever marked safe. Sections are rendered without the viewer's
CSRF token, so that one rendering serves every open page: the page's script copies the token
from its `<meta>` into the forms of each section it receives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from maestro_mcp.models import ActivityKind, SessionStatus, TaskStatus, iso
from maestro_mcp.service.activity import money, tokens

from .board import Board, WorkerPage

BOARD_SECTIONS = ("summary", "sessions", "approvals", "plan", "mail", "steering")
WORKER_SECTIONS = ("w-head", "w-activity", "w-tasks", "w-reports", "w-mail", "w-log")
CSRF_FIELD = 'name="csrf" value=""'

_env = Environment(
    loader=PackageLoader("maestro_mcp.dashboard", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _ts(value: float | None) -> str:
    return iso(value) or ""


def _short(text: str | None, limit: int = 120) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _clock(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%H:%M:%S")


_env.filters["ts"] = _ts
_env.filters["clock"] = _clock
_env.filters["money"] = money
_env.filters["tokens"] = tokens
_env.filters["short"] = _short
_env.globals["ENDED"] = {SessionStatus.exited, SessionStatus.stopped, SessionStatus.failed}
_env.globals["TaskStatus"] = TaskStatus
_env.globals["ActivityKind"] = ActivityKind


@dataclass(frozen=True)
class Section:
    id: str
    html: str

    @property
    def version(self) -> str:
        return hashlib.sha1(self.html.encode(), usedforsecurity=False).hexdigest()[:12]


def _sections(names: tuple[str, ...], context: dict[str, Any]) -> dict[str, Section]:
    return {name: Section(name, _env.get_template(f"sections/{name}.html").render(context)) for name in names}


def board_sections(board: Board) -> dict[str, Section]:
    return _sections(BOARD_SECTIONS, {"b": board, "s": board.status, "csrf": ""})


def worker_sections(page: WorkerPage) -> dict[str, Section]:
    return _sections(WORKER_SECTIONS, {"w": page, "csrf": ""})


def page(template: str, sections: dict[str, Section], *, csrf: str, feed: str, **context: Any) -> str:
    """A whole page: its frame, its sections (each with the viewer's CSRF token filled in), and the
    versions the page's event stream starts from."""
    # The token is hex, and the placeholder is the exact attribute the section templates write.
    filled = {name: s.html.replace(CSRF_FIELD, f'name="csrf" value="{csrf}"') for name, s in sections.items()}
    versions = ",".join(f"{name}:{s.version}" for name, s in sections.items())
    return _env.get_template(template).render(
        sections=filled, versions=versions, csrf=csrf, feed=feed, section_ids=list(sections), **context
    )


def not_found(what: str) -> str:
    return _env.get_template("missing.html").render(what=what, csrf="", feed="")
