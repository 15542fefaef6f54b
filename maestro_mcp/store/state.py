"""Shared state: JSON values by key, versioned, with compare-and-set and expiry, written once as steps.

A key that expired is read as unset, but its row stays with its version, so that a new value
after expiry gets a higher version than any value before it: a compare-and-set made against a
version seen before expiry can never win against the new value (no ABA).
"""

from __future__ import annotations

from maestro_mcp.models import StateEntry, StateWrite

from .notify import state_topic
from .rows import Row
from .sql import Statement
from .steps import Step, Wake

LIVE = "(expires_at IS NULL OR expires_at > :ts)"
GET = Statement(f"SELECT * FROM state WHERE key = :key AND {LIVE}")
ANY = Statement("SELECT * FROM state WHERE key = :key")
LISTED = Statement(f"SELECT * FROM state WHERE {LIVE} AND key >= :prefix ORDER BY key LIMIT :limit")
# Unconditional: a new key starts at 1, an existing one (live or expired) goes one up.
PUT = Statement(
    "INSERT INTO state (key, value, version, set_by, set_at, expires_at)"
    " VALUES (:key, :value, 1, :set_by, :ts, :expires_at)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = state.version + 1,"
    " set_by = excluded.set_by, set_at = excluded.set_at, expires_at = excluded.expires_at RETURNING *"
)
# if_version=0: only while the key is unset (never set, or expired).
CREATE = Statement(
    "INSERT INTO state (key, value, version, set_by, set_at, expires_at)"
    " VALUES (:key, :value, 1, :set_by, :ts, :expires_at)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = state.version + 1,"
    " set_by = excluded.set_by, set_at = excluded.set_at, expires_at = excluded.expires_at"
    " WHERE state.expires_at IS NOT NULL AND state.expires_at <= :ts RETURNING *"
)
# if_version=N: only while the live value is still version N. Under concurrent writers the row
# lock (PostgreSQL) or the write lock (SQLite) makes the second one see version N+1 and match nothing.
SWAP = Statement(
    "UPDATE state SET value = :value, version = version + 1, set_by = :set_by, set_at = :ts,"
    f" expires_at = :expires_at WHERE key = :key AND version = :expected AND {LIVE} RETURNING *"
)
# Forgetting a key expires it now: its row keeps the version, for the reason in the module docstring.
EXPIRE = Statement(f"UPDATE state SET expires_at = :ts WHERE key = :key AND {LIVE}")


def entry(row: Row) -> StateEntry:
    return StateEntry(
        key=row["key"],
        value=row["value"],
        version=int(row["version"]),
        set_by=row["set_by"],
        set_at=float(row["set_at"]),
        expires_at=None if row["expires_at"] is None else float(row["expires_at"]),
    )


def put(
    key: str, value: str, set_by: str | None, ts: float, expires_at: float | None, if_version: int | None
) -> Step[StateWrite]:
    params = {"key": key, "value": value, "set_by": set_by, "ts": ts, "expires_at": expires_at}
    if if_version is None:
        row = yield PUT.one(**params)
    elif if_version == 0:
        row = yield CREATE.one(**params)
    else:
        row = yield SWAP.one(**params, expected=if_version)
    if row is None:
        current = yield GET.one(key=key, ts=ts)
        return StateWrite(won=False, entry=entry(current) if current else None)
    yield Wake((state_topic(key),))
    return StateWrite(won=True, entry=entry(row))


def get(key: str, ts: float) -> Step[StateEntry | None]:
    row = yield GET.one(key=key, ts=ts)
    return entry(row) if row else None


def listed(prefix: str, ts: float, limit: int) -> Step[list[StateEntry]]:
    found = yield LISTED.all(prefix=prefix, ts=ts, limit=limit)
    return [entry(r) for r in found if r["key"].startswith(prefix)]


def expire(key: str, ts: float) -> Step[bool]:
    """Unset a live key (`maestro state rm`); False when it was not set."""
    gone = yield EXPIRE.count(key=key, ts=ts)
    if gone:
        yield Wake((state_topic(key),))
    return bool(gone)
