"""A project on disk for tests that start real `maestro` processes in it: its folder, its store, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI_S = 60


def new_project(tmp_path: Path) -> Path:
    """A project folder with its `.maestro` (the store is made by the first process that opens it)."""
    root = tmp_path / "project"
    (root / ".maestro").mkdir(parents=True)
    return root


def db_of(project: Path) -> str:
    return str(project / ".maestro" / "maestro.db")


def user_env(db: str | Path | None = None) -> dict[str, str]:
    """The environment a user's shell gives a process: none of this test run's MAESTRO_* settings, and
    `db` as MAESTRO_DB when given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")}
    if db is not None:
        env["MAESTRO_DB"] = str(db)
    return env


def maestro(project: Path, *args: str, db: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`maestro ARGS` in `project`, as a user runs it: none of this test run's MAESTRO_* settings, no stdin."""
    env = user_env(db)
    return subprocess.run(
        [sys.executable, "-m", "maestro_mcp", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )
