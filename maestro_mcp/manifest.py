"""What a coordinator or worker is told at start: rendered from a template users can override.

Built-in templates live in `maestro_mcp/templates/`; a project overrides one by
writing `.maestro/templates/worker.md` or `coordinator.md` (the same `${name}`
placeholders). Role profiles (`dev`, `review`, `test`, or a project's own in
`.maestro/profiles/NAME.md`) add standing instructions.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from maestro_mcp.errors import InvalidArgument, NotFound
from maestro_mcp.models import Directive, Role, SessionRecord, TaskRecord, TaskStatus
from maestro_mcp.policy import RuleSet, describe


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
    permissions: RuleSet | None = None
    """The policy that applies to the session; None for agents whose CLI maestro does not gate."""
    scratch_tools: Sequence[str] = ()
    """The CLI's own task, todo and team tools (private scratch)."""


def _read(package_dir: str, name: str, project_root: Path | None, subdir: str) -> str | None:
    if project_root is not None:
        own = project_root / ".maestro" / subdir / f"{name}.md"
        if own.is_file():
            return own.read_text(encoding="utf-8")
    builtin = resources.files("maestro_mcp") / package_dir / f"{name}.md"
    return builtin.read_text(encoding="utf-8") if builtin.is_file() else None


PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def profile_text(name: str, project_root: Path | None) -> str:
    if not PROFILE_NAME.match(name):
        # A name is a file in the profiles folder, never a path: "../../x" would read any file into a manifest.
        raise InvalidArgument(
            f"{name!r} is not a profile name.", "Use dev, review, test, or the name of a file in .maestro/profiles/."
        )
    text = _read("profiles", name, project_root, "profiles")
    if text is None:
        raise NotFound(
            f"No role profile {name!r}.",
            f"Use dev, review or test, or write .maestro/profiles/{name}.md.",
        )
    return text.strip()


PLAN_WAVES_IN_FULL = 2
"""A coordinator's manifest lists the tasks of the current and the next wave; the rest are counted."""
FINISHED = (TaskStatus.done, TaskStatus.cancelled)


def _tasks(tasks: Sequence[TaskRecord], coordinator: bool = False) -> str:
    if not tasks:
        if coordinator:
            return "No tasks yet: turn the directive into a plan with task_create."
        return "None assigned yet: claim ready work with task_ready(claim=true)."
    shown: Sequence[TaskRecord] = tasks
    rest = ""
    if coordinator:
        open_waves = sorted({t.wave for t in tasks if t.status not in FINISHED})
        waves = set(open_waves[:PLAN_WAVES_IN_FULL])
        shown = [t for t in tasks if t.wave in waves and t.status not in FINISHED]
        done = sum(t.status in FINISHED for t in tasks)
        later = len(tasks) - len(shown) - done
        counted = [f"{done} finished"] if done else []
        if later:
            counted.append(f"{later} in later waves")
        rest = f"\n(and {', '.join(counted)}: see task_list)" if counted else ""
    blocks = []
    for t in shown:
        lines = [f"- **{t.id}** {t.title} [{t.status.value}]"]
        if t.description:
            lines.append("  " + t.description.replace("\n", "\n  "))
        if t.acceptance:
            lines.append("  Acceptance: " + t.acceptance.replace("\n", "\n  "))
        if t.files:
            lines.append("  Files: " + ", ".join(t.files))
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + rest


def _permissions(rules: RuleSet | None) -> str:
    if rules is None:
        return "Your agent runs its tools without maestro's policy."
    allowed, denied = describe(rules)
    return (
        f"Without asking: {allowed}.\n"
        f"Never: {denied}.\n"
        "Anything else is put to your coordinator: the tool call waits for the answer (at most"
        f" {rules.approval_timeout_s:.0f} s) and, when refused, tells you why. Do not retry a refused call;"
        " find another way or ask your coordinator with mail_send."
    )


def _scratch(tools: Sequence[str]) -> str:
    named = f" ({', '.join(tools)})" if tools else ""
    return (
        f"Your CLI's own task, todo and team tools{named} are private scratch: nobody else sees them."
        " Coordinate through maestro: tasks with the task_* tools and report_progress, messages with mail_send."
    )


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
    coordinator = ctx.session.role is Role.coordinator
    kind = "coordinator" if coordinator else "worker"
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
        "directive": ctx.directive.strip()
        or (
            "Plan the work, split it into tasks and see the team through it."
            if coordinator
            else "Work through your tasks."
        ),
        "profile": f"\n## Your role\n{ctx.profile}\n" if ctx.profile else "",
        "tasks": _tasks(ctx.tasks, coordinator),
        "permissions": _permissions(ctx.permissions),
        "scratch": _scratch(ctx.scratch_tools),
        "files": "\n".join(f"- {f}" for f in files) or "None declared.",
        "workspace": _workspace(ctx.session),
        "siblings": siblings or "No team mates yet.",
        "steering": _steering(ctx.steering),
        "team": f"\n## The team to build\n{ctx.team}\n" if ctx.team else "",
        "agents": ", ".join(ctx.agents) or "claude, codex, gemini, script",
    }
    return string.Template(template).safe_substitute(values)
