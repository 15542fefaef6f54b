"""The store's file in trouble, with real processes: reported in one clear line, never taken for something else.

- A 0-byte file where the store should be was once opened as a new, empty store (500 tasks vanished
  without a word): it is refused, by the human CLI and by `maestro serve`, and left as it is.
- A malformed database gave `doctor` and `export` a bare sqlite3.DatabaseError.
- A store file deleted (or replaced) while servers ran went on being written, into the unlinked file.
- A full disk came back as a bare "Error executing tool task_create".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from projectkit import maestro, new_project

from maestro_mcp.client import AgentClient, ToolCallError, serve_params

pytestmark = pytest.mark.anyio

START_S = 20
CALL_S = 15


def one_clear_line(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert done.returncode != 0, done.stdout
    text = done.stderr + done.stdout
    assert "Traceback" not in text and "DatabaseError" not in text, text
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1, done.stderr
    for needle in needles:
        assert needle in line, line
    return line


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return new_project(tmp_path)


def store_of(project: Path) -> Path:
    return project / ".maestro" / "maestro.db"


@pytest.mark.parametrize("args", [("status",), ("init", "--no-configs"), ("export",), ("tasks",), ("serve",)])
def test_a_zero_byte_store_file_is_refused_not_taken_for_a_new_store(project: Path, args: tuple[str, ...]) -> None:
    store_of(project).touch()

    line = one_clear_line(maestro(project, *args), str(store_of(project)), "empty file (0 bytes)", "maestro import")

    assert "maestro init" in line
    assert store_of(project).stat().st_size == 0, "left as it was"


def test_a_new_project_is_still_created_by_init(project: Path) -> None:
    done = maestro(project, "init", "--no-configs")
    assert done.returncode == 0, done.stderr
    assert store_of(project).stat().st_size > 0


def damage(db: Path) -> None:
    """Overwrite data pages near the end of the file, as a bad disk would, leaving the schema readable."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = db.stat().st_size
    with db.open("r+b") as f:
        for offset in range(max(size - 4096 * 20, 4096 * 12), size - 4096 * 2, 4096):
            f.seek(offset)
            f.write(b"\x0d\xad\xbe\xef" * 1024)


@pytest.fixture
def malformed(project: Path) -> Path:
    assert maestro(project, "init", "--no-configs").returncode == 0
    plan = project / "plan.yaml"
    plan.write_text("tasks:\n" + "".join(f"  - {{title: task {i}, description: {'x' * 3000}}}\n" for i in range(30)))
    assert maestro(project, "tasks", "import", str(plan)).returncode == 0
    damage(store_of(project))
    return store_of(project)


def test_export_of_a_malformed_store_is_one_line_with_the_recovery_steps(project: Path, malformed: Path) -> None:
    one_clear_line(maestro(project, "export"), str(malformed), "damaged", "maestro import", ".recover")


def test_doctor_on_a_malformed_store_fails_its_integrity_check_with_the_recovery_steps(
    project: Path, malformed: Path
) -> None:
    done = maestro(project, "doctor")
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr and "DatabaseError" not in done.stdout
    failed = [line for line in done.stdout.splitlines() if line.startswith("[FAIL]")]
    assert failed and "damaged" in failed[0] and "maestro import" in failed[0], done.stdout


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_store_file_deleted_or_replaced_under_a_running_server_is_noticed_and_not_written(
    project: Path, how: str
) -> None:
    db = store_of(project)
    server = serve_params(db=str(db), name="lead", cwd=str(project))
    async with AgentClient(server, read_timeout_s=START_S) as lead:
        with anyio.fail_after(CALL_S):
            await lead.call("task_create", tasks=[{"title": "before"}])
        if how == "deleted":
            db.unlink()
        else:
            shutil.copy(db, project / "copy.db")
            os.replace(project / "copy.db", db)
        replacement = db.read_bytes() if how == "replaced" else b""
        for tool, arguments in (("task_create", {"tasks": [{"title": "after"}]}), ("task_list", {})):
            with pytest.raises(ToolCallError) as info, anyio.fail_after(CALL_S):
                await lead.call(tool, **arguments)
            text = info.value.text
            assert f"The store file {db} was {how}" in text and "Restart the project's agents" in text, text
    if how == "deleted":
        assert not db.exists(), "nothing made a new file at the path behind the agents' backs"
    else:
        assert db.read_bytes() == replacement, "the new file at the path was not written by the old server"


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=False)
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs failed (this sandbox does not allow it)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="a small full disk needs a tmpfs mount, which needs root")
async def test_a_full_disk_says_the_stores_disk_is_full_and_nothing_is_half_written(tmp_path: Path) -> None:
    with small_disk(tmp_path / f"disk-{uuid.uuid4().hex[:6]}", "3m") as disk:
        project = disk / "project"
        (project / ".maestro").mkdir(parents=True)
        db = store_of(project)
        server = serve_params(db=str(db), name="lead", cwd=str(project))
        async with AgentClient(server, read_timeout_s=START_S) as lead:
            with anyio.fail_after(CALL_S):
                await lead.call("task_create", tasks=[{"title": f"kept {i}"} for i in range(5)])
            filler = disk / "filler"
            with filler.open("wb") as f, contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            big = [{"title": f"big {i}", "description": "x" * 60_000} for i in range(20)]
            with pytest.raises(ToolCallError) as info, anyio.fail_after(CALL_S):
                await lead.call("task_create", tasks=big)
            assert "The disk of the store" in info.value.text and "is full" in info.value.text, info.value.text
            assert "Error executing tool" not in info.value.text
            filler.unlink()
            with anyio.fail_after(CALL_S):
                titles = sorted(t["title"] for t in (await lead.call("task_list"))["tasks"])
                assert titles == [f"kept {i}" for i in range(5)], "the refused batch left nothing behind"
                await lead.call("task_create", tasks=[{"title": "after"}])
