"""`maestro tasks`: the DAG by wave, `import PLAN [--dry-run]`, `retry` and `cancel`, as a human runs them."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from maestro_mcp.cli import app
from maestro_mcp.models import Role, TaskRecord
from maestro_mcp.service import Services
from maestro_mcp.store import create_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plans"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory as the working directory, with no store configured."""
    root = tmp_path / "project"
    root.mkdir()
    (root / ".git").mkdir()  # the project root a new store goes into
    monkeypatch.chdir(root)
    for name in ("MAESTRO_DB", "MAESTRO_SESSION", "MAESTRO_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return root


def maestro(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def stored(db: Path) -> list[TaskRecord]:
    async def read() -> list[TaskRecord]:
        store = create_store(str(db))
        await store.open()
        try:
            return await store.list_tasks()
        finally:
            await store.close()

    return anyio.run(read)


def test_dry_run_prints_the_waves_and_creates_no_store(project: Path) -> None:
    code, out, err = maestro("tasks", "import", str(EXAMPLES / "todo-app.yaml"), "--dry-run")
    assert code == 0, err
    assert out.startswith("6 tasks in 3 waves (dry run)")
    waves = re.findall(r"^wave (\d+)$", out, re.MULTILINE)
    assert waves == ["0", "1", "2"]
    wave1 = out.split("wave 1")[1].split("wave 2")[0]
    for key in ("storage", "cli", "api"):
        assert f" {key} [pending]" in wave1
    assert "tests [pending] Tests for storage, CLI and API after storage, cli, api" in out
    assert not (project / ".maestro").exists()


def test_dry_run_of_the_markdown_example(project: Path) -> None:
    code, out, err = maestro("tasks", "import", str(EXAMPLES / "todo-app.md"), "--dry-run")
    assert code == 0, err
    assert out.startswith("4 tasks in 3 waves (dry run)")
    assert "phase-4 [pending] Tests after phase-2, phase-3" in out


def test_dry_run_does_not_touch_an_existing_store(project: Path) -> None:
    assert maestro("tasks", "import", str(EXAMPLES / "todo-app.md"))[0] == 0
    db = project / ".maestro" / "maestro.db"
    before = stored(db)
    assert maestro("tasks", "import", str(EXAMPLES / "todo-app.yaml"), "--dry-run")[0] == 0
    assert stored(db) == before


def test_import_creates_the_tasks_and_maestro_tasks_shows_them_by_wave(project: Path) -> None:
    code, out, err = maestro("tasks", "import", str(EXAMPLES / "todo-app.yaml"))
    assert code == 0, err
    assert out.startswith("imported 6 tasks")
    db = project / ".maestro" / "maestro.db"
    tasks = {t.key: t for t in stored(db)}
    assert {k: t.wave for k, t in tasks.items()} == {
        "model": 0,
        "storage": 1,
        "cli": 1,
        "api": 1,
        "docs": 2,
        "tests": 2,
    }
    assert tasks["model"].status.value == "ready"
    assert set(tasks["tests"].depends_on) == {tasks["storage"].id, tasks["cli"].id, tasks["api"].id}

    code, out, _ = maestro("tasks")
    assert code == 0
    assert re.findall(r"^wave (\d+)$", out, re.MULTILINE) == ["0", "1", "2"]
    assert f"○ {tasks['model'].id} [ready] Define the todo data model" in out
    docs = next(line for line in out.splitlines() if tasks["docs"].id in line)
    assert docs.startswith(f"  · {tasks['docs'].id} [pending] User documentation after ")
    assert tasks["cli"].id in docs and tasks["api"].id in docs

    code, out, _ = maestro("tasks", "--status", "ready")
    assert code == 0 and tasks["model"].id in out and tasks["cli"].id not in out


def test_import_with_maestro_db_uses_that_store(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "elsewhere" / "team.location"
    monkeypatch.setenv("MAESTRO_DB", str(db))
    code, _, err = maestro("tasks", "import", str(EXAMPLES / "todo-app.md"))
    assert code == 0, err
    assert len(stored(db)) == 4
    assert not (project / ".maestro").exists()


def test_a_bad_plan_is_one_clear_line_and_stores_nothing(project: Path) -> None:
    assert maestro("tasks", "import", str(EXAMPLES / "todo-app.md"))[0] == 0
    db = project / ".maestro" / "maestro.db"
    before = stored(db)
    bad = project / "plan.yaml"
    bad.write_text("tasks:\n  - key: a\n    title: A\n  - key: b\n    depends_on: [a]\n")
    code, out, err = maestro("tasks", "import", str(bad))
    assert code == 1 and out == ""
    assert err.strip() == f"maestro: {bad}:4: task 2: `title`: Field required"

    cyclic = project / "cyclic.yaml"
    cyclic.write_text("- {key: a, title: A, depends_on: [b]}\n- {key: b, title: B, depends_on: [a]}\n")
    code, _, err = maestro("tasks", "import", str(cyclic))
    assert code == 1 and ("cycle: a -> b -> a" in err or "cycle: b -> a -> b" in err)
    assert stored(db) == before


def test_a_plan_with_characters_yaml_never_allows_is_one_clear_line(project: Path) -> None:
    """A NUL or another control character once ended `maestro tasks import` in a yaml.ReaderError traceback."""
    for text, line in (("\x00\x01 binary", 1), ('tasks:\n  - {title: a}\n  - {title: "b\x07"}\n', 3)):
        bad = project / "plan.yaml"
        bad.write_text(text)
        code, out, err = maestro("tasks", "import", str(bad))
        assert code == 1 and out == "" and "Traceback" not in err
        assert err.strip().startswith(f"maestro: {bad}:{line}: not a text plan: the character U+"), err


def test_retry_and_cancel(project: Path) -> None:
    assert maestro("tasks", "import", str(EXAMPLES / "todo-app.yaml"))[0] == 0
    db = project / ".maestro" / "maestro.db"
    ids = {t.key: t.id for t in stored(db)}

    async def fail_the_model() -> None:
        store = create_store(str(db))
        await store.open()
        try:
            svc = Services.create(store)
            worker = (await svc.sessions.register(name="w1", role=Role.worker, agent="script")).session
            claimed = (await svc.tasks.ready(worker, claim=True, limit=1)).claimed
            assert claimed is not None and claimed.id == ids["model"]
            await svc.tasks.update(worker, claimed.id, status=claimed.status.failed, result="broke")
        finally:
            await store.close()

    anyio.run(fail_the_model)
    tasks = {t.key: t for t in stored(db)}
    assert tasks["model"].status.value == "failed" and tasks["storage"].status.value == "blocked"
    _, out, _ = maestro("tasks")
    assert f"blocked: dependency {ids['model']} (Define the todo data model) is failed" in out

    code, out, err = maestro("tasks", "retry", ids["model"])
    assert code == 0, err
    assert out.strip() == f"{ids['model']} is now ready"
    tasks = {t.key: t for t in stored(db)}
    assert tasks["model"].status.value == "ready" and tasks["storage"].status.value == "pending"

    code, out, err = maestro("tasks", "cancel", ids["docs"], "--reason", "out of scope")
    assert code == 0, err
    assert out.strip() == f"{ids['docs']} is now cancelled"
    docs = {t.key: t for t in stored(db)}["docs"]
    assert docs.status.value == "cancelled" and docs.result == "out of scope"

    code, _, err = maestro("tasks", "retry", ids["docs"])
    assert code == 1 and "is cancelled, not failed or blocked: there is nothing to retry" in err
    code, _, err = maestro("tasks", "retry", ids["model"])  # ready: nothing to retry either, and it says so
    assert code == 1 and "is ready, not failed or blocked" in err, err
    code, _, err = maestro("tasks", "cancel", "t-nope")
    assert code == 1 and "No task 't-nope'" in err


def test_maestro_tasks_without_a_store_says_how_to_make_one(project: Path) -> None:
    code, out, err = maestro("tasks")
    assert code == 1 and out == ""
    assert "No maestro store found" in err and "maestro init" in err
