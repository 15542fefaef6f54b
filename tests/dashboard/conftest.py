"""Fixtures of the dashboard's tests: a store the demo's team produced, and fresh project stores."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashkit import run_demo


@pytest.fixture(scope="session")
def demo_store() -> Iterator[str]:
    """The store of one real run of `maestro demo` (8 tasks, a coordinator and 4 workers); read only."""
    workspace, store = run_demo()
    try:
        yield store
    finally:
        if workspace.name.startswith("maestro-demo-"):
            shutil.rmtree(workspace, ignore_errors=True)


@pytest.fixture
def db(tmp_path: Path) -> str:
    project = tmp_path / "project"
    project.mkdir()
    return str(project / ".maestro" / "maestro.db")
