"""The store contract suite runs unchanged on every backend (`kit` and `backend` in ../conftest.py).

`kit.open()` opens *another* store object on the same location: as far as the
store can tell, another process.
"""

from __future__ import annotations

import pytest
from store_builders import session_record
from storekit import Maker, StoreKit

from maestro_mcp.models import Role, SessionRecord
from maestro_mcp.store import Store


@pytest.fixture
async def store(kit: StoreKit) -> Store:
    return await kit.open()


@pytest.fixture
def make_session(store: Store) -> Maker:
    """Create a session in `store` by name (optionally with a role and a parent)."""

    async def make(name: str, role: Role = Role.worker, parent: SessionRecord | None = None) -> SessionRecord:
        return await store.create_session(session_record(name, role, parent.id if parent else None))

    return make
