"""Storage: the `Store` protocol, written once over a narrow port. SQL and drivers live only here.

The store is three ideas:

- **statements** (`sql.Statement`): each SQL statement once, with ``:named``
  parameters and ``{TOKENS}`` for what the backends spell differently;
- **steps** (`steps`): each rule once, as a generator that yields statements
  (and `Wake` for the topics it rings, `Lock` to serialise) and receives rows;
- **a backend**: an executor that runs a step as one transaction, its dialect
  (token table, how lists and flags are stored) and its wake-up transport.
  `sqlite/` (a file; Unix sockets) and `postgres/` (asyncpg; LISTEN/NOTIFY)
  are the two; a third is those three files plus a run of the contract suite.

Layout: `engine.SQLStore` is the `Store`, one short method per operation; the
steps and statements it runs live by subject in `sessions`, `mail`, `tasks`,
`approvals` and `operator` (directives, views, snapshots); `schema` holds the
migrations; `rows` turns rows into models.

Adding a table (say, shared state; `approvals.py` and migration 4 are a worked example):

1. append a migration to `schema.MIGRATIONS` using the type tokens, and add the
   table to `schema.TABLES` (parents first), `schema.DUMP_ORDER` and, for an
   auto-numbered key, `schema.SEQUENCES`, so that snapshots and `maestro migrate`
   carry it;
2. write a module (`state.py`) with its statements and steps, yielding
   `Wake(...)` for the topics a change must ring;
3. add the methods to `base.Store` and to `engine.SQLStore`, each one line that
   runs a step with `executor.read` or `executor.write` (saying whether a retried
   write is harmless: `idempotent`);
4. add contract tests under tests/store: they run on every backend.
"""

from __future__ import annotations

from maestro_mcp.config import Settings, is_url, redact_url, settings
from maestro_mcp.errors import StoreError

from .base import Store
from .engine import SQLStore
from .notify import ALL, Subscription, mail_topic

__all__ = ["ALL", "SQLStore", "Store", "Subscription", "create_store", "mail_topic"]


def create_store(location: str, config: Settings | None = None, *, pool_size: int | None = None) -> SQLStore:
    """The store at `location`: a `postgresql://` URL or a SQLite file path. Call `open()` next.

    `pool_size` (PostgreSQL): connections this process may use at once; default from the settings."""
    if is_url(location):
        config = config or settings()
        try:
            from .postgres.executor import PostgresExecutor
        except ImportError as exc:  # asyncpg is an optional dependency
            raise StoreError(
                f"{redact_url(location)}: the PostgreSQL backend needs {exc.name}, which is not installed.",
                "pip install 'maestro-coord-mcp[postgres]', or use a SQLite path in MAESTRO_DB.",
            ) from exc
        return SQLStore(
            PostgresExecutor(
                location, open_timeout_s=config.pg_open_timeout_s, pool_size=pool_size or config.pg_pool_size
            )
        )
    from .sqlite.executor import SQLiteExecutor

    return SQLStore(SQLiteExecutor(location))
