"""`maestro export` / `maestro import`: the whole store as one JSON document, restored exactly."""

from __future__ import annotations

import json
from typing import Any

from maestro_mcp import __version__
from maestro_mcp.errors import InvalidArgument
from maestro_mcp.models import now
from maestro_mcp.store import Store
from maestro_mcp.store.schema import TABLES

from . import snapshot_rows

FORMAT = "maestro-snapshot"
VERSION = 1
# Every column holds text, a number or NULL; anything else in a row is a damaged snapshot.
SCALARS = (str, int, float, type(None))


async def export(store: Store) -> dict[str, Any]:
    # The store's dump is portable already, whatever its backend: lists as JSON text, flags as 0/1.
    tables = await store.dump()
    return {
        "format": FORMAT,
        "version": VERSION,
        "schema_version": await store.schema_version(),
        "maestro": __version__,
        "exported_at": now(),
        "tables": {t: tables.get(t, []) for t in TABLES},
    }


def parse(text: str, source: str) -> dict[str, Any]:
    """Check a snapshot document before anything is written."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"{source}:{exc.lineno}: not JSON ({exc.msg}).", "Pass a file from `maestro export`."
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InvalidArgument(f"{source} is not a maestro snapshot.", "Pass a file written by `maestro export`.")
    if doc.get("version") != VERSION:
        raise InvalidArgument(f"{source} is snapshot version {doc.get('version')!r}; this maestro reads {VERSION}.")
    tables = doc.get("tables")
    if not isinstance(tables, dict) or any(
        not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows) for rows in tables.values()
    ):
        raise InvalidArgument(f"{source}: `tables` must map table names to lists of rows.")
    unknown = set(tables) - set(TABLES)
    if unknown:
        raise InvalidArgument(f"{source}: unknown tables {', '.join(sorted(unknown))}.")
    for table, rows in tables.items():
        for n, row in enumerate(rows, 1):
            bad = sorted(k for k, v in row.items() if not isinstance(v, SCALARS))
            if bad:
                raise InvalidArgument(
                    f"{source}: {table} row {n} has values that are not plain text or numbers: {', '.join(bad)}.",
                    "Pass an unmodified file written by `maestro export`.",
                )
    snapshot_rows.check(source, tables)
    return doc


async def restore(store: Store, doc: dict[str, Any], *, force: bool) -> dict[str, int]:
    ours = await store.schema_version()
    theirs = doc.get("schema_version")
    if not isinstance(theirs, int) or theirs > ours:
        raise InvalidArgument(
            f"The snapshot has schema version {theirs!r}, newer than this store's ({ours}).", "Upgrade maestro first."
        )
    tables = {t: doc["tables"].get(t, []) for t in TABLES}
    await store.restore(tables, replace=force)
    return {t: len(rows) for t, rows in tables.items()}
