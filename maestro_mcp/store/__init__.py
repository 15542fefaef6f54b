"""Storage: the `Store` protocol and its backends. SQL and drivers live only here."""

from __future__ import annotations

from maestro_mcp.config import is_url, redact_url
from maestro_mcp.errors import StoreError

from .base import Store
from .notify import ALL, Subscription, mail_topic

__all__ = ["ALL", "Store", "Subscription", "create_store", "mail_topic"]


def create_store(location: str) -> Store:
    """The backend for `location`: a `postgresql://` URL or a SQLite file path. Call `open()` next."""
    if is_url(location):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:  # asyncpg is an optional dependency
            raise StoreError(
                f"{redact_url(location)}: the PostgreSQL backend needs asyncpg, which is not installed.",
                "pip install 'maestro-coord-mcp[postgres]', or use a SQLite path in MAESTRO_DB.",
            ) from exc
        return PostgresStore(location)
    from .sqlite import SQLiteStore

    return SQLiteStore(location)
