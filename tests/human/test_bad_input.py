"""Bad input on every command: a clear message on stderr, a non-zero exit, never a traceback, nothing damaged.

Unknown ids, a missing store, a store of a newer schema, a corrupt store file, and snapshots that are
not JSON, not snapshots, or damaged.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from human_support import Result, maestro, opened

from maestro_mcp.models import Role

# Every command that reads or writes the project's store, with arguments that would otherwise be fine.
STORE_COMMANDS: list[tuple[str, ...]] = [
    ("status",),
    ("status", "--json"),
    ("watch",),
    ("sessions",),
    ("sessions", "--json"),
    ("mail", "ls"),
    ("mail", "send", "w1", "hello"),
    ("mail", "thread", "m-nope"),
    ("steer", "be careful"),
    ("steer", "--clear"),
    ("stop", "w1"),
    ("export",),
    ("tasks",),
    ("tasks", "retry", "t-nope"),
    ("tasks", "cancel", "t-nope"),
]
IDS = [" ".join(c) for c in STORE_COMMANDS]


def assert_clean_failure(result: Result, *needles: str) -> None:
    """Non-zero, one short message on stderr naming what is wrong, and no traceback anywhere."""
    assert result.code != 0, f"expected a failure, got exit 0:\n{result.output}"
    assert "Traceback" not in result.output
    assert result.err.startswith("maestro: "), result.output
    assert len(result.err.strip().splitlines()) <= 3, f"too long for one clear message:\n{result.err}"
    for needle in needles:
        assert needle in result.err, f"{needle!r} not in {result.err!r}"


def dump(db: Path) -> dict[str, list[dict[str, Any]]]:
    async def read() -> dict[str, list[dict[str, Any]]]:
        async with opened(db) as svc:
            return await svc.store.dump()

    return anyio.run(read)


def write_sql(db: Path, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


# -- unknown ids ---------------------------------------------------------------------------------------------


@pytest.fixture
def with_worker(initialised: Path) -> Path:
    async def register() -> None:
        async with opened(initialised) as svc:
            await svc.sessions.register(name="lead", role=Role.coordinator, agent="script")
            await svc.sessions.register(name="w1", role=Role.worker, agent="script", parent="lead")

    anyio.run(register)
    return initialised


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("tasks", "retry", "t-nope"), "t-nope"),
        (("tasks", "cancel", "t-nope"), "t-nope"),
        (("mail", "thread", "m-nope"), "m-nope"),
        (("mail", "send", "nobody", "hi"), "nobody"),
        (("mail", "send", "w1", "hi", "--reply-to", "m-nope"), "m-nope"),
        (("stop", "nobody"), "nobody"),
        (("steer", "hi", "--to", "nobody"), "nobody"),
        (("steer", "--clear", "d-nope"), "d-nope"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_unknown_ids_are_a_clear_error_and_change_nothing(
    with_worker: Path, args: tuple[str, ...], needle: str
) -> None:
    before = dump(with_worker)

    result = maestro(*args)

    assert_clean_failure(result, needle)
    after = dump(with_worker)
    # The operator's own session may be registered by the attempt; nothing else may change.
    after["sessions"] = [s for s in after["sessions"] if s["name"] != "operator"]
    assert after == before


def test_stop_with_an_out_of_range_grace_is_a_clear_error(with_worker: Path) -> None:
    assert_clean_failure(maestro("stop", "w1", "--grace", "9999"), "grace")


@pytest.mark.parametrize("limit", ["0", "-1", "99999999999999999999", "ten"])
def test_mail_ls_with_a_limit_out_of_range_is_a_usage_error(initialised: Path, limit: str) -> None:
    result = maestro("mail", "ls", "--limit", limit)
    assert result.code == 2
    assert "--limit" in result.err
    assert "Traceback" not in result.output


def test_steer_without_text_and_with_both_to_and_all_are_clear_errors(with_worker: Path) -> None:
    assert_clean_failure(maestro("steer"), "steer")
    assert_clean_failure(maestro("steer", "hi", "--to", "w1", "--all"), "--to", "--all")
    assert dump(with_worker)["directives"] == []


# -- a missing store ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", STORE_COMMANDS, ids=IDS)
def test_without_a_store_every_command_says_to_run_maestro_init(project: Path, args: tuple[str, ...]) -> None:
    result = maestro(*args)

    assert_clean_failure(result, "maestro init")
    assert not (project / ".maestro").exists(), "a failed command must not create a store"


# -- a store of a newer schema ---------------------------------------------------------------------------------


@pytest.fixture
def newer_schema(initialised: Path) -> Path:
    write_sql(initialised, "INSERT INTO schema_migrations (version, applied_at) VALUES (999, ?)", time.time())
    return initialised


@pytest.mark.parametrize(
    "args", [*STORE_COMMANDS, ("init",), ("import", "snapshot.json", "--force")], ids=[*IDS, "init", "import"]
)
def test_a_store_of_a_newer_schema_is_refused_with_upgrade_advice(
    newer_schema: Path, project: Path, args: tuple[str, ...]
) -> None:
    (project / "snapshot.json").write_text(json.dumps(EMPTY_SNAPSHOT))
    before = newer_schema.read_bytes()

    result = maestro(*args)

    assert_clean_failure(result, "999", "Upgrade maestro")
    conn = sqlite3.connect(newer_schema)
    try:
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == 999
    finally:
        conn.close()
    assert len(newer_schema.read_bytes()) == len(before)


def test_doctor_on_a_newer_schema_fails_and_says_to_upgrade(newer_schema: Path) -> None:
    result = maestro("doctor")
    assert result.code != 0
    assert "Upgrade maestro" in result.out
    assert "Traceback" not in result.output


# -- a corrupt store file --------------------------------------------------------------------------------------


@pytest.fixture
def corrupt(project: Path) -> Path:
    db = project / ".maestro" / "maestro.db"
    db.parent.mkdir()
    db.write_bytes(b"this is not a database, it is a note someone saved here by mistake\n" * 200)
    return db


@pytest.mark.parametrize(
    "args", [*STORE_COMMANDS, ("init",), ("import", "snapshot.json")], ids=[*IDS, "init", "import"]
)
def test_a_corrupt_store_file_is_a_clear_error_and_is_left_as_it_was(
    corrupt: Path, project: Path, args: tuple[str, ...]
) -> None:
    (project / "snapshot.json").write_text(json.dumps(EMPTY_SNAPSHOT))
    before = corrupt.read_bytes()

    result = maestro(*args)

    assert_clean_failure(result, str(corrupt), "not a usable maestro store")
    assert corrupt.read_bytes() == before


def test_doctor_on_a_corrupt_store_fails_and_says_what_to_do(corrupt: Path) -> None:
    result = maestro("doctor")
    assert result.code != 0
    assert "[FAIL] store" in result.out and "maestro export" in result.out
    assert "Traceback" not in result.output


# -- snapshots that are not snapshots -------------------------------------------------------------------------

EMPTY_SNAPSHOT = {"format": "maestro-snapshot", "version": 1, "schema_version": 1, "tables": {}}
SESSION = {
    "id": "s-1",
    "name": "w1",
    "role": "worker",
    "agent": "script",
    "status": "idle",
    "created_at": 1.0,
    "last_seen_at": 1.0,
}


def snapshot_with(**tables: list[dict[str, Any]]) -> str:
    return json.dumps({**EMPTY_SNAPSHOT, "tables": tables})


BAD_SNAPSHOTS = {
    "not json": ("this is not json {", "not JSON"),
    "empty file": ("", "not JSON"),
    "a json list": ("[1, 2, 3]", "not a maestro snapshot"),
    "a json object of another kind": (json.dumps({"mcpServers": {}}), "not a maestro snapshot"),
    "a future snapshot version": (json.dumps({**EMPTY_SNAPSHOT, "version": 2}), "version 2"),
    "a newer schema": (json.dumps({**EMPTY_SNAPSHOT, "schema_version": 999}), "999"),
    "tables not a mapping": (json.dumps({**EMPTY_SNAPSHOT, "tables": [1]}), "tables"),
    "an unknown table": (snapshot_with(secrets=[]), "secrets"),
    "an unknown column": (snapshot_with(sessions=[{**SESSION, "evil; DROP TABLE tasks": 1}]), "unknown columns"),
    "a nested value": (snapshot_with(sessions=[{**SESSION, "name": ["w1"]}]), "name"),
    "a missing required column": (snapshot_with(sessions=[{"id": "s-1"}]), "sessions"),
    "a receipt for a missing message": (
        snapshot_with(
            sessions=[SESSION], receipts=[{"session_id": "s-1", "message_seq": 7, "status": "sent", "priority": 2}]
        ),
        "receipts",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SNAPSHOTS))
def test_a_bad_snapshot_is_refused_and_the_store_is_untouched(with_worker: Path, project: Path, case: str) -> None:
    text, needle = BAD_SNAPSHOTS[case]
    (project / "bad.json").write_text(text)
    before = dump(with_worker)

    result = maestro("import", "bad.json", "--force")

    assert_clean_failure(result, needle)
    assert dump(with_worker) == before


@pytest.mark.parametrize("case", ["not json", "a json list", "a missing required column"])
def test_a_bad_snapshot_into_an_empty_project_leaves_no_half_restored_store(project: Path, case: str) -> None:
    text, needle = BAD_SNAPSHOTS[case]
    (project / "bad.json").write_text(text)

    assert_clean_failure(maestro("import", "bad.json"), needle)

    db = project / ".maestro" / "maestro.db"
    if db.exists():
        assert all(rows == [] for rows in dump(db).values())


def test_a_binary_file_a_directory_and_a_missing_file_are_not_snapshots(initialised: Path, project: Path) -> None:
    assert_clean_failure(maestro("import", str(initialised)), str(initialised))
    assert_clean_failure(maestro("import", str(project)), str(project))
    assert_clean_failure(maestro("import", "nowhere.json"), "nowhere.json")


def test_export_to_an_unwritable_place_is_a_clear_error(initialised: Path, project: Path) -> None:
    assert_clean_failure(maestro("export", "-o", str(project / "no" / "such" / "dir" / "snap.json")), "snap.json")
