"""`maestro export --full` / `maestro import FILE.tar.gz`: store, logs and worker branches, into a new project."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import anyio
import pytest
from human_support import amaestro, maestro, opened

from maestro_mcp.models import Role

pytestmark = pytest.mark.anyio


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.fixture
def team_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a worktree worker whose branch has commits of its own, a log, and shared state."""
    root = tmp_path / "old"
    root.mkdir()
    git(root, "init", "--quiet", "-b", "main")
    (root / "README.md").write_text("hello\n")
    git(root, "add", "README.md")
    git(root, "commit", "--quiet", "-m", "start")
    monkeypatch.chdir(root)
    assert maestro("init", "--no-configs").code == 0
    tree = root / ".maestro" / "worktrees" / "w1"
    git(root, "worktree", "add", "--quiet", "-b", "maestro/w1", str(tree), "HEAD")
    for n in range(3):
        (tree / f"f{n}.py").write_text(f"x = {n}\n")
        git(tree, "add", f"f{n}.py")
        git(tree, "commit", "--quiet", "-m", f"w1 step {n}")
    logs = root / ".maestro" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "w1.log").write_text("w1 did three steps\n")
    (logs / "w1.raw.jsonl").write_text('{"type": "result"}\n')
    return root


async def test_a_full_export_restores_store_logs_and_branches_into_an_empty_project(
    team_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = team_project
    async with opened(old / ".maestro" / "maestro.db") as svc:
        boss = await svc.sessions.register(name="boss", role=Role.coordinator, agent="script")
        await svc.sessions.register(
            name="w1", role=Role.worker, agent="script", parent=boss.session.id, isolation="worktree",
            branch="maestro/w1", workspace=str(old / ".maestro" / "worktrees" / "w1"),
        )  # fmt: skip
        await svc.state.set(None, "api.port", "8080")
    snap = tmp_path / "snap.tar.gz"

    exported = await amaestro("export", "--full", "-o", str(snap))

    assert exported.code == 0, exported.output
    assert "2 log(s), 1 branch(es)" in exported.err
    new = tmp_path / "new"
    new.mkdir()
    monkeypatch.chdir(new)
    preview = await amaestro("import", str(snap), "--dry-run")
    assert preview.code == 0, preview.output
    assert "would restore" in preview.out and "maestro/w1" in preview.out and "w1.raw.jsonl" in preview.out
    assert list(new.iterdir()) == []  # a dry run writes nothing

    restored = await amaestro("import", str(snap))

    assert restored.code == 0, restored.output
    log_format = "--format=%H %an %s"
    assert git(new, "log", log_format, "maestro/w1") == git(old, "log", log_format, "maestro/w1")
    assert (new / ".maestro" / "logs" / "w1.log").read_text() == "w1 did three steps\n"
    assert (new / ".maestro" / "worktrees" / "w1" / "f2.py").read_text() == "x = 2\n"
    async with opened(new / ".maestro" / "maestro.db") as svc:
        w1 = await svc.store.get_session("w1")
        port = await svc.state.get("api.port")
    assert w1 is not None and w1.workspace == str(new / ".maestro" / "worktrees" / "w1")
    assert port is not None and port.value == "8080"

    again = await amaestro("import", str(snap))
    assert again.code == 1 and "not empty" in again.err


def evil(path: Path, name: str, link: bool = False) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for member, data in (
            ("manifest.json", json.dumps({"format": "maestro-full-snapshot", "version": 1}).encode()),
            ("store.json", b"{}"),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo(name)
        if link:
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 5
            tar.addfile(info, io.BytesIO(b"owned"))


@pytest.mark.parametrize(
    ("member", "link"),
    [("../escaped.txt", False), ("logs/../../escaped.txt", False), ("/tmp/escaped.txt", False), ("logs/l", True)],
)
async def test_a_tarball_with_paths_that_escape_is_refused_before_anything_is_extracted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, member: str, link: bool
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    bad = tmp_path / "bad.tar.gz"
    evil(bad, member, link)
    monkeypatch.chdir(project)

    result = await amaestro("import", str(bad))

    assert result.code == 1
    assert repr(member) in result.err and "nothing was extracted" in result.err
    assert list(project.iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists() and not await anyio.Path("/tmp/escaped.txt").exists()
