"""`maestro import` of a hostile snapshot: refused at its first bad value, in one line, store unchanged.

A snapshot once imported a session whose role was `god` and a message of priority 9; `sessions`,
`status` and `tasks` then crashed with tracebacks. Each case below changes one value of a real export
and imports it with a real `maestro` process, over a store that has data (`--force`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import anyio
import projectkit
import pytest
from human_support import maestro, opened

from maestro_mcp.models import ActivityBatch, ActivityKind, NewActivity, Role, Usage, now
from maestro_mcp.service.snapshot_rows import MODELS
from maestro_mcp.store.schema import TABLES


def dump(db: Path) -> dict[str, list[dict[str, Any]]]:
    async def read() -> dict[str, list[dict[str, Any]]]:
        async with opened(db) as svc:
            return await svc.store.dump()

    return anyio.run(read)


@pytest.fixture
def exported(initialised: Path, project: Path) -> dict[str, Any]:
    """A real export of a store with sessions, tasks with dependencies and files, mail and a report."""

    async def fill() -> None:
        async with opened(initialised) as svc:
            lead = await svc.sessions.register(name="lead", role=Role.coordinator, agent="script")
            w1 = await svc.sessions.register(name="w1", role=Role.worker, agent="script", parent="lead")
            await svc.mail.send(lead.session, "w1", "hello", subject="hi")
            await svc.store.set_limits(w1.session.id, 2.0, None)
            event = NewActivity(at=now(), kind=ActivityKind.tool_call, summary="running pytest -q")
            spent = Usage(input_tokens=10, output_tokens=2, cost_usd=0.01)
            await svc.store.record_activity(
                ActivityBatch(session_id=w1.session.id, relay="r", batch=1, events=[event], usage=spent)
            )
            await svc.state.set(lead.session, "api.port", "8080")

    anyio.run(fill)
    plan = project / "plan.yaml"
    plan.write_text("tasks:\n  - {key: a, title: A, files: [src/a.py]}\n  - {key: b, title: B, depends_on: [a]}\n")
    assert maestro("tasks", "import", str(plan)).code == 0
    done = projectkit.maestro(project, "export", "-o", "good.json")
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads((project / "good.json").read_text())
    return doc


def changed(doc: dict[str, Any], table: str, column: str, value: Any) -> dict[str, Any]:
    bad = copy.deepcopy(doc)
    bad["tables"][table][0][column] = value
    return bad


# (table, column, hostile value, what the one line must say)
CASES: list[tuple[str, str, Any, str]] = [
    ("sessions", "role", "god", "'god' is not one of"),
    ("sessions", "status", "zombie", "'zombie' is not one of"),
    ("sessions", "created_at", 1e300, "not a time between 1970 and 9999"),
    ("sessions", "last_seen_at", -5, "not a time between"),
    ("sessions", "created_at", "yesterday", "not a time in epoch seconds"),
    ("sessions", "pid", -1, "-1"),
    ("sessions", "name", "../../x", "'../../x'"),
    ("sessions", "exit_code", "0", "'0'"),
    ("messages", "priority", 9, "9"),
    ("messages", "type", "spam", "'spam' is not one of"),
    ("messages", "body", "a\x00b", "NUL"),
    ("receipts", "status", "read", "'read' is not one of"),
    ("tasks", "status", "doing", "'doing' is not one of"),
    ("tasks", "priority", 10**12, "1000000000000"),
    ("tasks", "files", "not json", "not a JSON list"),
    ("tasks", "files", '["/etc/passwd"]', "absolute path"),
    ("tasks", "files", '["../../outside"]', "outside the project"),
    ("tasks", "artifacts", '{"a": 1}', "not a JSON list"),
    ("tasks", "blocked_on_deps", 7, "not 0 or 1"),
    ("tasks", "description", "x" * 200_000, "the limit is"),
    ("tasks", "wave", -3, "-3"),
    ("tasks", "title", 5, "5"),
    ("activity", "kind", "explode", "'explode' is not one of"),
    ("activity", "summary", "a\x00b", "NUL"),
    ("session_stats", "cost_usd", -1.0, "-1.0"),
    ("session_stats", "budget_usd", 0, "0"),
    ("session_stats", "launch", "not json", "is not a JSON object"),
    ("session_stats", "input_tokens", "many", "'many'"),
    ("state", "key", "../etc", "'../etc' is not valid"),
    ("state", "value", "{not json", "is not JSON"),
    ("state", "version", 0, "0"),
]


@pytest.mark.parametrize(("table", "column", "value", "needle"), CASES, ids=[f"{t}.{c}" for t, c, _, _ in CASES])
def test_a_hostile_snapshot_is_refused_in_one_line_naming_the_field_and_nothing_changes(
    exported: dict[str, Any], initialised: Path, project: Path, table: str, column: str, value: Any, needle: str
) -> None:
    (project / "bad.json").write_text(json.dumps(changed(exported, table, column, value)))
    before = dump(initialised)

    done = projectkit.maestro(project, "import", "bad.json", "--force")

    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{table} row 1, `{column}`" in lines[0] and needle in lines[0], lines[0]
    assert dump(initialised) == before


def test_tasks_that_are_their_own_parent_or_depend_on_each_other_are_refused(
    exported: dict[str, Any], initialised: Path, project: Path
) -> None:
    task = exported["tables"]["tasks"][0]
    own_parent = changed(exported, "tasks", "parent_id", task["id"])
    cycle = copy.deepcopy(exported)
    dep = cycle["tables"]["task_deps"][0]
    cycle["tables"]["task_deps"].append({"task_id": dep["depends_on"], "depends_on": dep["task_id"]})
    before = dump(initialised)
    for doc, needle in ((own_parent, "its own parent"), (cycle, "a cycle")):
        (project / "bad.json").write_text(json.dumps(doc))
        done = projectkit.maestro(project, "import", "bad.json", "--force")
        assert done.returncode != 0 and needle in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert dump(initialised) == before


def test_the_unmodified_export_imports_and_reads_back_the_same(
    exported: dict[str, Any], initialised: Path, project: Path
) -> None:
    before = dump(initialised)
    done = projectkit.maestro(project, "import", "good.json", "--force")
    assert done.returncode == 0, done.stderr
    assert dump(initialised) == before
    for args in (("sessions",), ("status",), ("tasks",), ("mail", "ls")):
        shown = projectkit.maestro(project, *args)
        assert shown.returncode == 0 and "Traceback" not in shown.stderr, (args, shown.stderr)


def test_every_table_a_snapshot_holds_has_a_row_model() -> None:
    # A table added by a migration needs its model in service/snapshot_rows.py, or an import would
    # let any value of it through.
    assert sorted(MODELS) == sorted(TABLES)
