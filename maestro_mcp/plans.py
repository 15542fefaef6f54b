"""Plans from files: YAML, JSON, or Markdown in the common "## Phase N: Title" shape.

Every form becomes a list of `TaskSpec`, fed to the same `task_create` path.
A file that does not parse is reported with its name, line and what was expected.

YAML / JSON::

    tasks:                       # or a bare list
      - key: schema
        title: Design the schema
        files: [src/db.py]
        acceptance: [migrations run on an empty database]
      - key: api
        title: Build the API
        depends_on: [schema]

Markdown::

    ## Phase 1: Design the schema
    - Write the tables
    Files: src/db.py, src/migrations/
    Acceptance: migrations run on an empty database

    ## Phase 2: Build the API
    Dependencies: Needs Phase 1 complete
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from maestro_mcp.errors import InvalidArgument
from maestro_mcp.models import TaskSpec


class PlanError(InvalidArgument):
    """A plan file that cannot be read: names the file, the line and what was expected."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = path, line, problem


@dataclass
class PlanEntry:
    """One task of a plan file: its spec, the extra fields the reader allowed, and its line."""

    spec: TaskSpec
    line: int | None
    extra: dict[str, Any] = field(default_factory=dict)


def load_plan(path: Path) -> list[TaskSpec]:
    return [entry.spec for entry in load_entries(path)]


def load_entries(path: Path, extra: frozenset[str] = frozenset()) -> list[PlanEntry]:
    """The plan's tasks with their lines; `extra` names fields beyond a TaskSpec's that are allowed
    (`maestro run` reads per-task `agent`, `model` and `budget_usd`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(str(path), None, f"cannot read the plan: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PlanError(str(path), None, "the plan is not UTF-8 text") from exc
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return markdown_entries(text, str(path))
    if suffix == ".json":
        return json_entries(text, str(path), extra)
    if suffix in (".yaml", ".yml"):
        return yaml_entries(text, str(path), extra)
    raise PlanError(str(path), None, "unknown plan format: expected a .yaml, .yml, .json or .md file")


def _specs(items: Any, lines: list[int | None], path: str, extra: frozenset[str] = frozenset()) -> list[PlanEntry]:
    if isinstance(items, dict) and "tasks" in items:
        items = items["tasks"]
    if not isinstance(items, list) or not items:
        raise PlanError(path, lines[0] if lines else 1, "expected a non-empty list of tasks (or `tasks:` with one)")
    specs = []
    for i, item in enumerate(items):
        line = lines[i] if i < len(lines) else None
        if not isinstance(item, dict):
            raise PlanError(path, line, f"task {i + 1}: expected a mapping with at least a `title`")
        unknown = [str(k) for k in item if k not in TaskSpec.model_fields and k not in extra]
        if unknown:
            # A misspelt `depends_on` would silently drop a dependency: refuse it instead.
            raise PlanError(
                path,
                line,
                f"task {i + 1}: unknown field {', '.join(f'`{k}`' for k in unknown)}; expected one of"
                f" {', '.join([*TaskSpec.model_fields, *sorted(extra)])}",
            )
        try:
            fields = {k: v for k, v in item.items() if k not in extra}
            specs.append(
                PlanEntry(TaskSpec.model_validate(fields), line, {k: v for k, v in item.items() if k in extra})
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "task"
            raise PlanError(path, line, f"task {i + 1}: `{field}`: {first['msg']}") from exc
    return specs


def parse_json(text: str, path: str = "<plan>") -> list[TaskSpec]:
    return [entry.spec for entry in json_entries(text, path)]


def json_entries(text: str, path: str = "<plan>", extra: frozenset[str] = frozenset()) -> list[PlanEntry]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(path, exc.lineno, f"invalid JSON: {exc.msg}") from exc
    try:
        # Valid JSON is (nearly always) valid YAML: its node tree gives each task's line.
        lines = _task_lines(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        lines = []
    return _specs(data, lines, path, extra)


def _task_lines(node: yaml.Node | None) -> list[int | None]:
    """Line numbers of each task entry, so validation errors can point at them."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "tasks" and isinstance(value, yaml.SequenceNode):
                node = value
    if isinstance(node, yaml.SequenceNode):
        return [item.start_mark.line + 1 for item in node.value]
    if node is not None:
        return [node.start_mark.line + 1]
    return []


def parse_yaml(text: str, path: str = "<plan>") -> list[TaskSpec]:
    return [entry.spec for entry in yaml_entries(text, path)]


def yaml_entries(text: str, path: str = "<plan>", extra: frozenset[str] = frozenset()) -> list[PlanEntry]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise PlanError(path, mark.line + 1 if mark else None, f"invalid YAML: {exc.problem}") from exc
    except yaml.reader.ReaderError as exc:  # a character YAML never allows (NUL, other controls): no mark
        line = text.count("\n", 0, exc.position) + 1
        problem = f"not a text plan: the character U+{exc.character:04X} is not allowed in YAML"
        raise PlanError(path, line, problem) from exc
    except yaml.YAMLError as exc:
        raise PlanError(path, None, f"invalid YAML: {exc}") from exc
    return _specs(data, _task_lines(node), path, extra)


PHASE_RE = re.compile(r"^#{2,3}\s*Phase\s+(\d+)\s*[:.\-–—]\s*(.+?)\s*$", re.IGNORECASE)
HEADING_RE = re.compile(r"^#{2,3}\s*Phase\b", re.IGNORECASE)
# `Files: x`, `**Files**: x` and `**Files:** x` (the bold often takes the colon with it).
FIELD_RE = re.compile(
    r"^\s*(?:[-*]\s*)?\*{0,2}(Files|Dependencies|Depends on|Acceptance|Priority)(?:\s*:\*{0,2}|\*{0,2}\s*:)\s*(.*)$",
    re.IGNORECASE,
)
BULLET_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s*)?(.+)$")
PHASE_REF_RE = re.compile(r"(?:Phase\s*)?(\d+)", re.IGNORECASE)


def parse_markdown(text: str, path: str = "<plan>") -> list[TaskSpec]:
    return [entry.spec for entry in markdown_entries(text, path)]


def markdown_entries(text: str, path: str = "<plan>") -> list[PlanEntry]:
    phases: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        heading = PHASE_RE.match(line)
        if heading:
            current = {
                "n": int(heading.group(1)),
                "title": heading.group(2),
                "line": number,
                "steps": [],
                "files": [],
                "deps": [],
                "acceptance": [],
                "priority": 0,
            }
            if any(p["n"] == current["n"] for p in phases):
                raise PlanError(path, number, f"Phase {current['n']} is defined twice")
            phases.append(current)
            continue
        if HEADING_RE.match(line):
            raise PlanError(path, number, "expected a heading like `## Phase 2: Build the API`")
        if current is None:
            continue  # a title or an introduction before the first phase
        field = FIELD_RE.match(line)
        if field:
            name, value = field.group(1).lower(), field.group(2).strip()
            if name == "files":
                current["files"] += [f.strip(" `") for f in value.split(",") if f.strip(" `")]
            elif name in ("dependencies", "depends on"):
                if value.lower() not in ("", "none", "-", "n/a"):
                    refs = [int(m) for m in PHASE_REF_RE.findall(value)]
                    if not refs:
                        raise PlanError(path, number, "expected `Dependencies: Needs Phase K complete` or `none`")
                    current["deps"] += [(k, number) for k in refs]
            elif name == "acceptance":
                if value:
                    current["acceptance"].append(value)
            elif name == "priority":
                try:
                    current["priority"] = int(value)
                except ValueError:
                    raise PlanError(path, number, "expected an integer after `Priority:`") from None
            continue
        bullet = BULLET_RE.match(line)
        if bullet:
            current["steps"].append(bullet.group(1).strip())
    if not phases:
        raise PlanError(path, 1, "no phases found: expected headings like `## Phase 1: Title`")
    known = {p["n"] for p in phases}
    specs = []
    for phase in phases:
        for k, line_no in phase["deps"]:
            if k not in known:
                raise PlanError(path, line_no, f"Phase {phase['n']} needs Phase {k}, which the plan does not define")
        steps = "\n".join(f"- {s}" for s in phase["steps"])
        specs.append(
            PlanEntry(
                TaskSpec(
                    key=f"phase-{phase['n']}",
                    title=phase["title"],
                    description=steps,
                    depends_on=[f"phase-{k}" for k, _ in phase["deps"]],
                    files=phase["files"],
                    acceptance=phase["acceptance"],
                    priority=phase["priority"],
                ),
                phase["line"],
            )
        )
    return specs
