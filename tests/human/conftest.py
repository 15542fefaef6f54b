"""The human side: a project directory as the working directory, with no agent identity leaking in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from human_support import ENV, maestro


@pytest.fixture(autouse=True)
def _no_outside_identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An agent's MAESTRO_* environment (these tests may run inside one) must not leak into the CLI."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project (a git root, no store yet) as the working directory."""
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def initialised(project: Path) -> Path:
    """A project after `maestro init`: the store is at .maestro/maestro.db."""
    result = maestro("init", "--no-configs")
    assert result.code == 0, result.output
    return project / ".maestro" / "maestro.db"


@pytest.fixture
def backend() -> str:
    """The CLI finds its store from the working directory, as a human's would: a project's SQLite file.
    (The PostgreSQL CLI paths are covered by test_postgres_processes.py.)"""
    return "sqlite"
