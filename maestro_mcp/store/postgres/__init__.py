"""The PostgreSQL backend: executor.py (asyncpg, one primary connection that also LISTENs, an optional pool,
retries), dialect.py (how PostgreSQL spells the shared statements), transport.py (LISTEN/NOTIFY channels)."""
