"""What humans and tools around the agents need from SQLite: recent mail, totals, operator
directives, snapshots (dump and restore). Mixed into `SQLiteStore`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from maestro_mcp.errors import Conflict, InvalidArgument
from maestro_mcp.models import Directive, Receipt, ReceiptStatus, ThreadMessage, iso, now
from maestro_mcp.store import rows as rows_
from maestro_mcp.store.base import TABLES
from maestro_mcp.store.notify import Notifier

T = TypeVar("T")

_MESSAGE_COLUMNS = rows_.MESSAGE_COLUMNS
_MESSAGE_FROM = rows_.MESSAGE_FROM


_message = rows_.message


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


def _receipts(conn: sqlite3.Connection, seqs: Sequence[int]) -> dict[int, list[Receipt]]:
    found: dict[int, list[Receipt]] = {}
    if not seqs:
        return found
    for r in conn.execute(
        "SELECT r.message_seq, r.session_id, s.name, r.status, r.delivered_at, r.acked_at"
        f" FROM receipts r JOIN sessions s ON s.id = r.session_id WHERE r.message_seq IN ({_placeholders(len(seqs))})"
        " ORDER BY s.name",
        list(seqs),
    ):
        found.setdefault(r["message_seq"], []).append(
            Receipt(
                session_id=r["session_id"],
                name=r["name"],
                status=ReceiptStatus(r["status"]),
                delivered_at=iso(r["delivered_at"]),
                acked_at=iso(r["acked_at"]),
            )
        )
    return found


def _directives(conn: sqlite3.Connection, session_id: str | None) -> list[Directive]:
    """Active directives concerning `session_id` (everyone's with None)."""
    concerning = "" if session_id is None else " AND (d.target_id IS NULL OR d.target_id = ?)"
    rows = conn.execute(
        "SELECT d.id, d.text, d.priority, d.created_at, s.name AS target FROM directives d"
        " LEFT JOIN sessions s ON s.id = d.target_id"
        f" WHERE d.cleared_at IS NULL{concerning} ORDER BY d.created_at",
        () if session_id is None else (session_id,),
    ).fetchall()
    return [
        Directive(
            directive_id=r["id"],
            text=r["text"],
            to=r["target"],
            priority=bool(r["priority"]),
            created_at=iso(r["created_at"]) or "",
        )
        for r in rows
    ]


def _empty(conn: sqlite3.Connection) -> bool:
    return all(conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None for table in TABLES)


class SQLiteAdmin:
    """The operator's half of `SQLiteStore`; uses its `_read`, `_write` and `notifier`."""

    notifier: Notifier

    if TYPE_CHECKING:

        async def _read(self, fn: Callable[..., T], *args: Any) -> T: ...

        async def _write(self, fn: Callable[..., T], *args: Any) -> T: ...

    async def recent_messages(self, limit: int) -> list[ThreadMessage]:
        def recent(conn: sqlite3.Connection) -> list[ThreadMessage]:
            sql = f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} ORDER BY m.seq DESC LIMIT ?"
            rows = conn.execute(sql, (limit,)).fetchall()
            receipts = _receipts(conn, [r["seq"] for r in rows])
            return [ThreadMessage(**_message(r).model_dump(), receipts=receipts.get(r["seq"], [])) for r in rows]

        return await self._read(recent)

    async def counts(self) -> dict[str, int]:
        def count(conn: sqlite3.Connection) -> dict[str, int]:
            totals = {"messages": conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]}
            totals.update({s.value: 0 for s in ReceiptStatus})
            for status, n in conn.execute("SELECT status, COUNT(*) FROM receipts GROUP BY status"):
                totals[status] = n
            totals["reports"] = conn.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
            return totals

        return await self._read(count)

    # -- directives -----------------------------------------------------------
    async def add_directive(
        self, directive_id: str, text: str, target_id: str | None, priority: bool, created_by: str | None
    ) -> None:
        await self._write(
            lambda c: c.execute(
                "INSERT INTO directives (id, text, target_id, priority, created_by, created_at) VALUES (?,?,?,?,?,?)",
                (directive_id, text, target_id, int(priority), created_by, now()),
            )
        )
        self.notifier.publish(["sessions"])

    async def clear_directives(self, directive_id: str | None) -> int:
        def clear(conn: sqlite3.Connection) -> int:
            if directive_id is None:
                cur = conn.execute("UPDATE directives SET cleared_at = ? WHERE cleared_at IS NULL", (now(),))
            else:
                cur = conn.execute(
                    "UPDATE directives SET cleared_at = ? WHERE id = ? AND cleared_at IS NULL", (now(), directive_id)
                )
            return cur.rowcount

        cleared = await self._write(clear)
        self.notifier.publish(["sessions"])
        return cleared

    async def all_directives(self) -> list[Directive]:
        return await self._read(_directives, None)

    # -- snapshots ------------------------------------------------------------
    async def dump(self) -> dict[str, list[dict[str, Any]]]:
        def dump(conn: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
            order = {"receipts": "message_seq, session_id", "task_deps": "task_id, depends_on", "sessions": "rowid"}
            return {
                table: [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY {order.get(table, 'rowid')}")]
                for table in TABLES
            }

        return await self._read(dump)

    async def restore(self, tables: dict[str, list[dict[str, Any]]], *, replace: bool) -> None:
        def restore(conn: sqlite3.Connection) -> None:
            if not replace and not _empty(conn):
                raise Conflict("The store is not empty.", "Import into a new project, or pass --force to replace it.")
            conn.execute("PRAGMA defer_foreign_keys = ON")
            for table in reversed(TABLES):
                conn.execute(f"DELETE FROM {table}")
            for table in TABLES:
                columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
                for number, row in enumerate(tables.get(table, []), 1):
                    unknown = set(row) - columns
                    if unknown:
                        raise InvalidArgument(
                            f"Snapshot table {table} has unknown columns: {', '.join(sorted(unknown))}."
                        )
                    names = list(row)
                    try:
                        conn.execute(
                            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({_placeholders(len(names))})",
                            [row[n] for n in names],
                        )
                    except (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError) as exc:
                        raise InvalidArgument(
                            f"Snapshot table {table}, row {number}: {exc}.",
                            "Pass an unmodified file from `maestro export`.",
                        ) from exc
            # Checked here, not at COMMIT: a failed COMMIT would leave the transaction open.
            dangling = conn.execute("PRAGMA foreign_key_check").fetchall()
            if dangling:
                tables_named = sorted({r[0] for r in dangling})
                raise InvalidArgument(
                    f"The snapshot has {len(dangling)} reference(s) to rows it does not contain"
                    f" (in {', '.join(tables_named)}).",
                    "Pass an unmodified file from `maestro export`.",
                )

        await self._write(restore)
        self.notifier.publish(["sessions", "tasks"])

    async def is_empty(self) -> bool:
        return await self._read(_empty)

    async def active_directives(self, session_id: str) -> list[Directive]:
        return await self._read(_directives, session_id)
