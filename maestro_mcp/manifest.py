"""What a coordinator or worker is told at start: rendered from a template users can override.

Built-in templates live in `maestro_mcp/templates/`; a project overrides one by
writing `.maestro/templates/worker.md` or `coordinator.md` (the same `${name}`
placeholders). Role profiles (`dev`, `review`, `test`, or a project's own in
`.maestro/profiles/NAME.md`) add standing instructions.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from maestro_mcp.errors import NotFound
from maestro_mcp.models import Directive, Role, SessionRecord, TaskRecord


@dataclass
class ManifestContext:
    session: SessionRecord
    coordinator: str | None
    directive: str
    tasks: Sequence[TaskRecord]
    siblings: Sequence[tuple[str, str, Sequence[str]]] = ()
    """(name, status, titles of its tasks) of each team mate."""
    steering: Sequence[Directive] = ()
    profile: str = ""
    team: str = ""
    agents: Sequence[str] = field(default_factory=list)


def _read(package_dir: str, name: str, project_root: Path | None, subdir: str) -> str | None:
    if project_root is not None:
        own = project_root / ".maestro" / subdir / f"{name}.md"
        if own.is_file():
            return own.read_text(encoding="utf-8")
    builtin = resources.files("maestro_mcp") / package_dir / f"{name}.md"
    return builtin.read_text(encoding="utf-8") if builtin.is_file() else None


def profile_text(name: str, project_root: Path | None) -> str:
    text = _read("profiles", name, project_root, "profiles")
    if text is None:
        raise NotFound(
            f"No role profile {name!r}.",
            f"Use dev, review or test, or write .maestro/profiles/{name}.md.",
        )
    return text.strip()


def _tasks(tasks: Sequence[TaskRecord]) -> str:
    if not tasks:
        return "None assigned yet: claim ready work with task_ready(claim=true)."
    blocks = []
    for t in tasks:
        lines = [f"- **{t.id}** {t.title} [{t.status.value}]"]
        if t.description:
            lines.append("  " + t.description.replace("\n", "\n  "))
        if t.acceptance:
            lines.append("  Acceptance: " + t.acceptance.replace("\n", "\n  "))
        if t.files:
            lines.append("  Files: " + ", ".join(t.files))
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _steering(directives: Sequence[Directive]) -> str:
    if not directives:
        return "None."
    return "\n".join(f"- {'[PRIORITY] ' if d.priority else ''}{d.text}" for d in directives)


def _workspace(session: SessionRecord) -> str:
    where = session.workspace or "the project directory"
    if session.isolation == "worktree" and session.branch:
        return (
            f"Your own git worktree, {where}, on branch `{session.branch}`. Commit your changes there before you"
            " report a task complete: `maestro merge` merges committed work only."
        )
    return f"{where}, shared with your team mates: keep to the files you own."


def render(ctx: ManifestContext, project_root: Path | None) -> str:
    kind = "coordinator" if ctx.session.role is Role.coordinator else "worker"
    template = _read("templates", kind, project_root, "templates") or ""
    files = sorted({f for t in ctx.tasks for f in t.files})
    siblings = "\n".join(
        f"- {name} [{status}]" + (f": {'; '.join(titles)}" if titles else "") for name, status, titles in ctx.siblings
    )
    values = {
        "name": ctx.session.name,
        "session_id": ctx.session.id,
        "agent": ctx.session.agent,
        "coordinator": ctx.coordinator or "none (you report to the operator)",
        "directive": ctx.directive.strip() or "Work through your tasks.",
        "profile": f"\n## Your role\n{ctx.profile}\n" if ctx.profile else "",
        "tasks": _tasks(ctx.tasks),
        "files": "\n".join(f"- {f}" for f in files) or "None declared.",
        "workspace": _workspace(ctx.session),
        "siblings": siblings or "No team mates yet.",
        "steering": _steering(ctx.steering),
        "team": f"\n## The team to build\n{ctx.team}\n" if ctx.team else "",
        "agents": ", ".join(ctx.agents) or "claude, codex, gemini, script",
    }
    return string.Template(template).safe_substitute(values)
