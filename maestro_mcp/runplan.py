"""A plan as `maestro run` takes it: read, parameters substituted, and checked before anything starts.

A run plan is a plan file (docs/plans.md) whose tasks may also say which `agent`, `model` and
`budget_usd` they need, and whose titles, descriptions and acceptance criteria may hold
``{{ params.KEY }}`` (from ``--param KEY=VALUE``, substituted now) and ``{{ state.KEY }}`` (shared
state, substituted when the task is handed out, so a task can read what an earlier one published as
``task.<key>.result``). Every problem is reported as ``file:line`` before any task or worker exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from maestro_mcp import adapters
from maestro_mcp.errors import InvalidArgument, MaestroError
from maestro_mcp.files import normalize
from maestro_mcp.models import TaskSpec
from maestro_mcp.plans import PlanEntry, PlanError, load_entries
from maestro_mcp.service.state import task_result_key
from maestro_mcp.service.tasks import find_cycle
from maestro_mcp.templates import substitute

RUN_FIELDS = frozenset({"agent", "model", "budget_usd"})


@dataclass(frozen=True)
class RunTask:
    spec: TaskSpec
    line: int | None
    agent: str | None = None
    model: str | None = None
    budget_usd: float | None = None


@dataclass(frozen=True)
class RunPlan:
    path: str
    tasks: list[RunTask]


def parse_params(pairs: Iterable[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(f"--param {pair!r} is not KEY=VALUE.", "Write it as --param name=value.")
        params[key.strip()] = value
    return params


def _line_of(text_lines: list[str], needle: str, fallback: int | None) -> int | None:
    for number, line in enumerate(text_lines, start=1):
        if needle in line:
            return number
    return fallback


def _texts(spec: TaskSpec) -> list[str]:
    acceptance = spec.acceptance if isinstance(spec.acceptance, list) else [spec.acceptance]
    return [spec.title, spec.description, *acceptance]


def _ancestors(keys: dict[str, list[str]], key: str) -> set[str]:
    seen: set[str] = set()
    stack = list(keys.get(key, []))
    while stack:
        dep = stack.pop()
        if dep not in seen:
            seen.add(dep)
            stack.extend(keys.get(dep, []))
    return seen


def load_run_plan(
    path: Path, params: Mapping[str, str], state: Mapping[str, str], project_root: Path, default_agent: str
) -> RunPlan:
    """Read and check `path`; `state` is the shared state now (key -> JSON text)."""
    where = str(path)
    entries: list[PlanEntry] = load_entries(path, RUN_FIELDS)
    lines = path.read_text(encoding="utf-8").splitlines()
    known_agents = set(adapters.definitions.available(project_root))
    problems: list[str] = []

    def problem(line: int | None, text: str) -> None:
        problems.append(f"{where}:{line}: {text}" if line else f"{where}: {text}")

    keys = {e.spec.key: e for e in entries if e.spec.key}
    deps = {k: list(e.spec.depends_on) for k, e in keys.items()}
    for entry in entries:
        for dep in entry.spec.depends_on:
            if dep not in keys:
                problem(entry.line, f"task {entry.spec.key or entry.spec.title!r} depends on {dep!r}, which no task"
                        " of the plan has as its key")  # fmt: skip
    cycle = find_cycle(deps)
    if cycle is not None:
        problem(keys[cycle[0]].line, f"these tasks depend on each other in a cycle: {' -> '.join(cycle)}")

    tasks: list[RunTask] = []
    for entry in entries:
        spec, extra = entry.spec, entry.extra
        agent = extra.get("agent") or default_agent
        if not isinstance(agent, str) or agent.partition(":")[0] not in known_agents:
            problem(entry.line, f"unknown agent kind {agent!r}; known: {', '.join(sorted(known_agents))}")
        model = extra.get("model")
        if model is not None and not isinstance(model, str):
            problem(entry.line, f"`model` must be a string, not {model!r}")
        budget = extra.get("budget_usd")
        if budget is not None and (not isinstance(budget, int | float) or isinstance(budget, bool) or budget <= 0):
            problem(entry.line, f"`budget_usd` must be a positive number, not {budget!r}")
        for declared in spec.files:
            try:
                normalize(declared)
            except MaestroError as exc:
                problem(_line_of(lines, declared, entry.line), f"files: {exc}")
        before = _ancestors(deps, spec.key) if spec.key else set()
        published_before = {task_result_key(k) for k in before}

        def lookup(ns: str, key: str, published: set[str] = published_before) -> str | None:
            if ns == "params":
                return params.get(key)
            if key in state or key in published:
                return "{{ state." + key + " }}"  # kept: filled in when the task is handed out
            return None

        texts = []
        for text in _texts(spec):
            filled, missing = substitute(text, lookup)
            texts.append(filled)
            for placeholder in missing:
                hint = ""
                if placeholder.split(".", 1)[0].strip("{ ") == "params":
                    hint = " (pass it with --param KEY=VALUE)"
                elif "state." in placeholder:
                    hint = " (not set in shared state, nor the result of a task this one depends on)"
                problem(_line_of(lines, placeholder, entry.line), f"unknown variable {placeholder}{hint}")
        title, description, *acceptance = texts
        filled_spec = spec.model_copy(
            update={
                "title": title,
                "description": description,
                "acceptance": acceptance if isinstance(spec.acceptance, list) else acceptance[0],
            }
        )
        tasks.append(
            RunTask(
                filled_spec,
                entry.line,
                agent if isinstance(agent, str) else None,
                model if isinstance(model, str) else None,
                float(budget) if isinstance(budget, int | float) else None,
            )
        )
    if problems:
        raise PlanError(where, None, "the plan cannot run:\n  " + "\n  ".join(problems))
    return RunPlan(where, tasks)
