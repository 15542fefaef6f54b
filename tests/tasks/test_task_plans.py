"""Plans from files: YAML, JSON and Markdown become the same task specs; bad files say file:line and why."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from maestro_mcp.plans import PlanError, load_plan, parse_json, parse_markdown, parse_yaml
from maestro_mcp.service import Services
from maestro_mcp.store import create_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plans"

YAML_WAVES = {"model": 0, "storage": 1, "cli": 1, "api": 1, "docs": 2, "tests": 2}
MD_WAVES = {"phase-1": 0, "phase-2": 1, "phase-3": 1, "phase-4": 2}


def waves_of(path: Path, tmp_path: Path) -> dict[str, int]:
    """Plan a file through the same service path as task_create, on a scratch store."""

    async def plan() -> dict[str, int]:
        store = create_store(str(tmp_path / "scratch.db"))
        await store.open()
        try:
            planned = await Services.create(store).tasks.plan(None, load_plan(path))
            return {t.key or t.id: t.wave for t in planned.tasks}
        finally:
            await store.close()

    return anyio.run(plan)


def test_every_example_plan_loads() -> None:
    examples = sorted(EXAMPLES.glob("*.yaml")) + sorted(EXAMPLES.glob("*.md"))
    assert len(examples) >= 2
    for path in examples:
        assert load_plan(path), path


def test_the_yaml_example_plans_in_three_waves(tmp_path: Path) -> None:
    assert waves_of(EXAMPLES / "todo-app.yaml", tmp_path) == YAML_WAVES
    specs = {s.key: s for s in load_plan(EXAMPLES / "todo-app.yaml")}
    assert specs["tests"].depends_on == ["storage", "cli", "api"]
    assert specs["model"].files == ["todo/model.py"]
    assert specs["model"].acceptance == ["Todo and Repository exist with add/list/complete"]


def test_the_markdown_example_plans_phases_as_waves(tmp_path: Path) -> None:
    assert waves_of(EXAMPLES / "todo-app.md", tmp_path) == MD_WAVES
    specs = {s.key: s for s in load_plan(EXAMPLES / "todo-app.md")}
    assert specs["phase-1"].title == "Define the todo data model"
    assert specs["phase-1"].depends_on == []
    assert specs["phase-4"].depends_on == ["phase-2", "phase-3"]
    assert specs["phase-2"].files == ["todo/storage.py"]
    assert specs["phase-1"].acceptance == ["Todo and Repository exist with add/list/complete"]
    assert "- Save and load the repository to a JSON file" in specs["phase-2"].description


def test_a_json_plan_is_read_like_yaml(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "tasks": [
                    {"key": "a", "title": "A", "files": ["a.py"]},
                    {"key": "b", "title": "B", "depends_on": ["a"], "acceptance": "works", "priority": 3},
                ]
            }
        )
    )
    specs = load_plan(plan)
    assert [(s.key, s.depends_on, s.priority) for s in specs] == [("a", [], 0), ("b", ["a"], 3)]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps([{"title": "Only"}]))
    assert [s.title for s in load_plan(bare)] == ["Only"]


def test_markdown_accepts_common_variations() -> None:
    specs = parse_markdown(
        "# Plan\nIntro text.\n\n"
        "### Phase 1 - Scaffold\n1. Create the package\n2) Add CI\n"
        "**Files:** `pkg/__init__.py`, `.github/`\n"
        "- **Dependencies:** None\n"
        "## phase 2. Features\n- [ ] feature one\n- [x] feature two\n"
        "Depends on: Phase 1\nPriority: 4\nAcceptance: features work\n**Acceptance**: docs too\n"
    )
    one, two = specs
    assert (one.key, one.title, one.files, one.depends_on) == (
        "phase-1",
        "Scaffold",
        ["pkg/__init__.py", ".github/"],
        [],
    )
    assert one.description == "- Create the package\n- Add CI"
    assert (two.key, two.title, two.depends_on, two.priority) == ("phase-2", "Features", ["phase-1"], 4)
    assert two.description == "- feature one\n- feature two"
    assert two.acceptance == ["features work", "docs too"]


BAD_FILES: list[tuple[str, str, int | None, str]] = [
    ("bad.yaml", "tasks:\n  - key: a\n    title: [unclosed\n", 4, "invalid YAML"),
    ("bad.yaml", "tasks:\n  - key: a\n    title: A\n  - key: b\n    depends_on: [a]\n", 4, "task 2: `title`"),
    ("bad.yaml", "tasks:\n  - key: a\n    title: A\n  - just a string\n", 4, "task 2: expected a mapping"),
    ("bad.yaml", "tasks: []\n", 1, "expected a non-empty list of tasks"),
    ("bad.yaml", "tasks:\n  - key: a\n    title: A\n    priority: high\n", 2, "task 1: `priority`"),
    ("bad.yaml", "tasks:\n  - key: a\n    title: A\n  - key: b\n    title: B\n    depends: [a]\n", 4, "`depends`"),
    ("bad.json", '{"tasks": [\n  {"key": "a", "title": "A"},\n  {"key": "b",}\n]}', 3, "invalid JSON"),
    ("bad.json", '{"tasks": [\n  {"key": "a", "title": "A"},\n  {"key": "b"}\n]}', 3, "task 2: `title`"),
    ("bad.md", "## Phase 1: A\n- step\n## Phase two: B\n", 3, "expected a heading like `## Phase 2"),
    ("bad.md", "## Phase 1: A\n## Phase 2: B\nDependencies: Needs Phase 3 complete\n", 3, "needs Phase 3"),
    ("bad.md", "## Phase 1: A\nDependencies: when it feels right\n", 2, "expected `Dependencies: Needs Phase K"),
    ("bad.md", "## Phase 1: A\n## Phase 1: A again\n", 2, "Phase 1 is defined twice"),
    ("bad.md", "## Phase 1: A\nPriority: soon\n", 2, "expected an integer after `Priority:`"),
    ("bad.md", "# Just notes\n- no phases here\n", 1, "no phases found"),
    ("bad.txt", "tasks: []\n", None, "unknown plan format"),
]


@pytest.mark.parametrize(("name", "text", "line", "says"), BAD_FILES)
def test_a_bad_plan_names_the_file_the_line_and_what_was_expected(
    tmp_path: Path, name: str, text: str, line: int | None, says: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PlanError) as info:
        load_plan(path)
    message = str(info.value)
    assert says in message
    where = f"{path}:{line}: " if line else f"{path}: "
    assert message.startswith(where), message
    assert info.value.line == line


def test_a_missing_or_binary_plan_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="cannot read the plan"):
        load_plan(tmp_path / "missing.yaml")
    binary = tmp_path / "plan.yaml"
    binary.write_bytes(b"\xff\xfe\x00tasks")
    with pytest.raises(PlanError, match="not UTF-8"):
        load_plan(binary)


def test_a_cyclic_plan_parses_but_is_refused_when_planned(tmp_path: Path) -> None:
    path = tmp_path / "cycle.md"
    path.write_text("## Phase 1: A\nDependencies: Needs Phase 2 complete\n## Phase 2: B\nDependencies: Phase 1\n")
    specs: Any = load_plan(path)
    assert [s.depends_on for s in specs] == [["phase-2"], ["phase-1"]]
    with pytest.raises(Exception, match=r"cycle: phase-\d -> phase-\d -> phase-\d"):
        waves_of(path, tmp_path)


DOCS = Path(__file__).resolve().parents[2] / "docs" / "plans.md"
PARSERS = {"yaml": parse_yaml, "json": parse_json, "markdown": parse_markdown}


@pytest.mark.parametrize("language", sorted(PARSERS))
def test_every_example_in_the_plan_format_docs_parses(language: str) -> None:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks, f"docs/plans.md has no {language} example"
    for block in blocks:
        specs = PARSERS[language](block, f"docs/plans.md ({language})")
        assert specs and all(s.title for s in specs)
