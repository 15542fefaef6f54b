"""Fixtures for the task-DAG tests: the in-memory team of harness.py, with its coordinator `boss`."""

from __future__ import annotations

import pytest
from harness import Agent, Team


@pytest.fixture
def crew(team: Team) -> Team:
    """The team under the name these tests use for it."""
    return team


@pytest.fixture
async def boss(team: Team) -> Agent:
    return await team.boss()
