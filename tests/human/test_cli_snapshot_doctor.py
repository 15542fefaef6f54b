"""`maestro export` / `maestro import` round-trip a store exactly; `maestro doctor` says what is wrong."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from human_support import amaestro, maestro, opened
from storekit import drop_schema, pg_base_url, with_params

from maestro_mcp.models import Role
from maestro_mcp.store.sqlite.transport import socket_dir_for

if TYPE_CHECKING:
    from harness import Team

pytestmark = pytest.mark.anyio


async def dump(db: Path) -> dict[str, list[dict[str, Any]]]:
    async with opened(db) as svc:
        return await svc.store.dump()


@pytest.fixture
async def busy_store(project: Path, team: Team) -> Path:
    """A store with something in every table: sessions, tasks with deps, mail in every receipt state,
    reports, and directives (one active, one cleared)."""
    lead = await team.agent("lead")
    w1 = await team.agent("w1", Role.worker, parent="lead")
    await team.agent("w2", Role.worker, parent="lead")
    await lead.call(
        "task_create",
        tasks=[
            {"key": "a", "title": "A", "files": ["a.py"], "acceptance": ["works"]},
            {"key": "b", "title": "B", "depends_on": ["a"]},
        ],
    )
    claimed = (await w1.call("task_ready", claim=True))["claimed"]
    await w1.call("report_progress", kind="complete", summary="did A", task_id=claimed["id"], artifacts=["a.py"])
    sent = await lead.call("mail_send", to=["w1", "w2"], body="hello", priority="high")
    got = await w1.call("mail_inbox")
    await w1.call("mail_ack", message_ids=[m["message_id"] for m in got["messages"]])
    await w1.call("mail_send", to="lead", body="thanks", reply_to=sent["message_id"])
    old = (await amaestro("steer", "old advice")).out.split()[1]
    assert (await amaestro("steer", "--clear", old)).code == 0
    assert (await amaestro("steer", "current advice", "--to", "w2", "--priority")).code == 0
    return project / ".maestro" / "maestro.db"


async def test_export_then_import_into_an_empty_project_gives_an_identical_store(
    busy_store: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "snap.json"
    exported = await amaestro("export", "-o", str(snapshot))
    assert exported.code == 0, exported.output
    doc = json.loads(snapshot.read_text())
    assert doc["format"] == "maestro-snapshot"
    assert all(doc["tables"][t] for t in ("sessions", "messages", "receipts", "directives", "tasks", "reports"))

    other = tmp_path_factory.mktemp("other")  # not below the first project, whose store would be found
    (other / ".git").mkdir()
    monkeypatch.chdir(other)
    imported = await amaestro("import", str(snapshot))

    assert imported.code == 0, imported.output
    assert await dump(other / ".maestro" / "maestro.db") == await dump(busy_store)
    # And the restored project works: the CLI reads it like the original.
    original = json.loads((await amaestro("status", "--json")).out)
    monkeypatch.chdir(busy_store.parent.parent)
    assert json.loads((await amaestro("status", "--json")).out)["tasks"] == original["tasks"]


async def test_export_to_stdout_is_the_same_snapshot(busy_store: Path, tmp_path: Path) -> None:
    to_file = await amaestro("export", "-o", str(tmp_path / "snap.json"))
    to_stdout = await amaestro("export")

    assert to_file.code == to_stdout.code == 0
    a, b = json.loads((tmp_path / "snap.json").read_text()), json.loads(to_stdout.out)
    a.pop("exported_at")
    b.pop("exported_at")
    assert a == b


async def test_import_over_a_non_empty_store_is_refused_without_force_and_replaces_it_with(
    busy_store: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "snap.json"
    assert (await amaestro("export", "-o", str(snapshot))).code == 0
    expected = await dump(busy_store)
    other = tmp_path_factory.mktemp("other")  # not below the first project, whose store would be found
    (other / ".git").mkdir()
    monkeypatch.chdir(other)
    assert (await amaestro("init", "--no-configs")).code == 0
    assert (
        await amaestro("tasks", "import", str(Path(__file__).parents[2] / "examples/plans/todo-app.yaml"))
    ).code == 0
    before = await dump(other / ".maestro" / "maestro.db")

    refused = await amaestro("import", str(snapshot))

    assert refused.code != 0
    assert "--force" in refused.err and "not empty" in refused.err
    assert await dump(other / ".maestro" / "maestro.db") == before

    forced = await amaestro("import", str(snapshot), "--force")
    assert forced.code == 0, forced.output
    assert await dump(other / ".maestro" / "maestro.db") == expected


def test_doctor_passes_on_a_healthy_store_and_missing_agent_clis_are_warnings(
    initialised: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no claude, codex or gemini here

    result = maestro("doctor")

    assert result.code == 0, result.output
    lines = result.out.splitlines()
    for check in ("store", "schema", "integrity", "notifier"):
        assert any(line.startswith("[  ok]") and f"] {check}:" in line for line in lines), (check, result.out)
    for cli in ("claude", "codex", "gemini"):
        assert any(line.startswith("[warn]") and f"launcher {cli}:" in line for line in lines), (cli, result.out)
    assert "0 problem(s)" in result.out
    assert "Traceback" not in result.output


def test_doctor_without_a_store_fails_and_says_how_to_create_one(project: Path) -> None:
    result = maestro("doctor")

    assert result.code != 0
    assert "[FAIL] store" in result.out
    assert "maestro init" in result.out
    assert "Traceback" not in result.output


def test_doctor_checks_the_project_mcp_configs(project: Path) -> None:
    assert maestro("init").code == 0
    (project / ".gemini" / "settings.json").write_text("{not json")

    result = maestro("doctor")

    assert result.code != 0
    assert any(line.startswith("[FAIL] gemini config") for line in result.out.splitlines()), result.out
    assert any(line.startswith("[  ok] claude config") for line in result.out.splitlines()), result.out


def test_doctor_starts_each_config_as_its_cli_would_and_fails_a_command_not_on_path(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config naming `maestro` looks fine, but the CLI would fail to start it where maestro is not on
    PATH: doctor resolves the command and completes one MCP handshake, as the CLI would."""
    bin_dir = Path(sys.executable).parent
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    assert maestro("init").code == 0  # maestro is on PATH here: portable configs naming `maestro`
    config = json.loads((project / ".mcp.json").read_text())["mcpServers"]["maestro"]
    assert config["command"] == "maestro"

    good = maestro("doctor")
    for cli in ("claude", "gemini"):
        assert any(
            line.startswith(f"[  ok] {cli} config") and "handshake ok" in line for line in good.out.splitlines()
        ), good.out

    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # as in a shell where the venv is not active
    bad = maestro("doctor")
    assert bad.code == 1
    failed = [line for line in bad.out.splitlines() if line.startswith("[FAIL] claude config")]
    assert failed and "`maestro`, which is not on PATH" in failed[0], bad.out
    assert "source .venv/bin/activate" in bad.out
    assert "Traceback" not in bad.output


def test_doctor_says_how_to_trust_the_project_for_codex(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "codex-home"
    home.mkdir()
    monkeypatch.setenv("CODEX_HOME", str(home))
    assert maestro("init").code == 0
    untrusted = maestro("doctor")
    lines = [line for line in untrusted.out.splitlines() if "codex config" in line]
    assert lines and lines[0].startswith("[warn]") and "until the project is trusted" in lines[0], untrusted.out
    assert f'[projects."{project.resolve()}"]' in untrusted.out and 'trust_level = "trusted"' in untrusted.out
    (home / "config.toml").write_text(f'[projects."{project.resolve()}"]\ntrust_level = "trusted"\n')
    trusted = maestro("doctor")
    assert any(line.startswith("[  ok] codex config") for line in trusted.out.splitlines()), trusted.out


def test_doctor_leaves_nothing_behind(initialised: Path) -> None:
    async def rows() -> dict[str, list[dict[str, Any]]]:
        return await dump(initialised)

    before = anyio.run(rows)
    assert maestro("doctor").code in (0, 1)
    assert anyio.run(rows) == before
    sockets = socket_dir_for(str(initialised))
    assert not any(name.startswith("doctor-") for name in (os.listdir(sockets) if sockets.exists() else []))


def test_doctor_on_a_postgresql_store_reports_its_facts_and_no_sqlite_ones(
    project: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = f"doctor_{secrets.token_hex(4)}"
    monkeypatch.setenv("MAESTRO_DB", with_params(pg_url, schema=schema))
    try:
        result = maestro("doctor")
    finally:
        anyio.run(drop_schema, pg_base_url(), schema)

    lines = result.out.splitlines()
    backend = next(line for line in lines if "] backend:" in line)
    assert "postgresql" in backend and f"schema {schema}" in backend and "LISTEN/NOTIFY" in backend
    assert any(line.startswith("[  ok] notifier:") for line in lines), result.out
    for sqlite_fact in ("sqlite", "journal", "sockets", "WAL"):
        assert sqlite_fact not in result.out, (sqlite_fact, result.out)
    assert "Traceback" not in result.output
