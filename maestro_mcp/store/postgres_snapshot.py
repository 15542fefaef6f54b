"""Whole-store snapshots on PostgreSQL (mixed into `PostgresStore`): dump, restore, is_empty.

A dump is backend-neutral and looks exactly like a SQLite dump: lists (text[]
here) become JSON text and flags (boolean here) become 0/1, so `maestro export`
from one backend imports into the other, and `maestro migrate` is a dump of
the SQLite store restored here. Column types are read from the catalog, so a
later migration that adds a column needs no change in this file.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from maestro_mcp.errors import Conflict, InvalidArgument

from .base import TABLES
from .postgres_base import PgOps, Tx

ORDER = {
    "sessions": "created_at, id",
    "messages": "seq",
    "receipts": "message_seq, session_id",
    "directives": "created_at, id",
    "tasks": "seq",
    "task_deps": "task_id, depends_on",
    "reports": "seq",
}
IDENTITY_COLUMNS = (("messages", "seq"), ("tasks", "seq"), ("reports", "seq"))


async def _column_types(conn: Any) -> dict[str, dict[str, str]]:
    """table -> column -> data_type, for the store's schema."""
    types: dict[str, dict[str, str]] = {}
    for r in await conn.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ANY($1::text[])",
        list(TABLES),
    ):
        types.setdefault(r["table_name"], {})[r["column_name"]] = r["data_type"]
    return types


def _portable(value: Any, data_type: str) -> Any:
    if value is None:
        return None
    if data_type == "ARRAY":
        return json.dumps(list(value))
    if data_type == "boolean":
        return int(value)
    return value


def _native(value: Any, data_type: str) -> Any:
    if value is None:
        return None
    if data_type == "ARRAY":
        return list(json.loads(value)) if isinstance(value, str) else list(value)
    if data_type == "boolean":
        return bool(value)
    if data_type in ("integer", "bigint", "smallint"):
        return int(value)
    if data_type == "double precision":
        return float(value)
    return value


async def _empty(conn: Any) -> bool:
    for table in TABLES:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
            return False
    return True


class PostgresSnapshots(PgOps):
    """Dump and restore; uses `PostgresStore._read` and `_write`."""

    async def dump(self) -> dict[str, list[dict[str, Any]]]:
        async def dump(conn: Any) -> dict[str, list[dict[str, Any]]]:
            types = await _column_types(conn)
            return {
                table: [
                    {k: _portable(v, types[table][k]) for k, v in row.items()}
                    for row in await conn.fetch(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")
                ]
                for table in TABLES
            }

        result: dict[str, list[dict[str, Any]]] = await self._read(dump, snapshot=True)
        return result

    async def restore(self, tables: dict[str, list[dict[str, Any]]], *, replace: bool) -> None:
        async def restore(tx: Tx) -> None:
            conn = tx.conn
            # Foreign keys are DEFERRABLE: checked at COMMIT, so rows may come in any order.
            await conn.execute("SET CONSTRAINTS ALL DEFERRED")
            if not replace and not await _empty(conn):
                raise Conflict("The store is not empty.", "Import into a new project, or pass --force to replace it.")
            for table in reversed(TABLES):
                await conn.execute(f"DELETE FROM {table}")
            types = await _column_types(conn)
            for table in TABLES:
                columns = types.get(table, {})
                batches: dict[tuple[str, ...], list[list[Any]]] = {}
                for row in tables.get(table, []):
                    unknown = set(row) - set(columns)
                    if unknown:
                        raise InvalidArgument(
                            f"Snapshot table {table} has unknown columns: {', '.join(sorted(unknown))}."
                        )
                    names = tuple(row)
                    batches.setdefault(names, []).append([_native(row[n], columns[n]) for n in names])
                for names, values in batches.items():
                    quoted = ", ".join(f'"{n}"' for n in names)
                    marks = ", ".join(f"${i + 1}" for i in range(len(names)))
                    try:
                        await conn.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({marks})", values)
                    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError, ValueError) as exc:
                        raise InvalidArgument(
                            f"Snapshot table {table}: {exc}.", "Pass an unmodified file from `maestro export`."
                        ) from exc
            try:
                # Check the deferred foreign keys now, inside the transaction, rather than at COMMIT.
                await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
            except asyncpg.ForeignKeyViolationError as exc:
                raise InvalidArgument(
                    f"The snapshot has references to rows it does not contain ({exc.table_name}: {exc.detail}).",
                    "Pass an unmodified file from `maestro export`.",
                ) from exc
            # Rows came with their own seq: new rows must be numbered after them.
            for table, column in IDENTITY_COLUMNS:
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                    f" COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
                )
            await tx.notify(["sessions", "tasks"])

        await self._write(restore)

    async def is_empty(self) -> bool:
        result: bool = await self._read(_empty, snapshot=True)
        return result
