"""What humans and tools around the agents need: directives, project-wide views, snapshots.

A dump is backend-neutral: lists are JSON text and flags are 0/1 on every
backend, so `maestro export` from one backend imports into the other and
`maestro migrate` is a dump restored elsewhere. A restore reads the target's
column kinds from its catalogue (the dialect's ``{COLUMNS}``), so a migration
that adds a column needs no change here.
"""

from __future__ import annotations

import json
from typing import Any

from maestro_mcp.errors import Conflict, InvalidArgument
from maestro_mcp.models import Directive, ReceiptStatus, ThreadMessage, now

from . import rows
from .mail import with_receipts
from .rows import MESSAGE_COLUMNS, MESSAGE_FROM
from .schema import DUMP_ORDER, SEQUENCES, TABLES
from .sql import Statement, statement
from .steps import Refused, Step, Wake

SESSIONS = ("sessions",)

DIRECTIVES = (
    "SELECT d.id, d.text, d.priority, d.created_at, s.name AS target FROM directives d"
    " LEFT JOIN sessions s ON s.id = d.target_id WHERE d.cleared_at IS NULL"
)
ALL_DIRECTIVES = Statement(f"{DIRECTIVES} ORDER BY d.created_at, d.id")
DIRECTIVES_FOR = Statement(
    f"{DIRECTIVES} AND (d.target_id IS NULL OR d.target_id = :session_id) ORDER BY d.created_at, d.id"
)
ADD_DIRECTIVE = Statement(
    "INSERT INTO directives (id, text, target_id, priority, created_by, created_at)"
    " VALUES (:id, :text, :target_id, :priority, :created_by, :ts) ON CONFLICT (id) DO NOTHING"
)
CLEAR_ONE = Statement("UPDATE directives SET cleared_at = :ts WHERE id = :id AND cleared_at IS NULL")
CLEAR_ALL = Statement("UPDATE directives SET cleared_at = :ts WHERE cleared_at IS NULL")
RECENT = Statement(f"SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} ORDER BY m.seq DESC LIMIT :limit")
COUNT_MESSAGES = Statement("SELECT COUNT(*) FROM messages")
COUNT_RECEIPTS = Statement("SELECT status, COUNT(*) AS n FROM receipts GROUP BY status")
COUNT_REPORTS = Statement("SELECT COUNT(*) FROM reports")
# (table_name, column_name, kind) with kind one of list, bool, int, real, text.
COLUMNS = Statement("{COLUMNS}")
DEFER_FOREIGN_KEYS = Statement("{DEFER_FOREIGN_KEYS}")
CHECK_FOREIGN_KEYS = Statement("{CHECK_FOREIGN_KEYS}")


# -- directives -------------------------------------------------------------------------------------------
def directives(session_id: str | None) -> Step[list[Directive]]:
    """Active directives concerning `session_id` (everyone's with None), oldest first."""
    if session_id is None:
        found = yield ALL_DIRECTIVES.all()
    else:
        found = yield DIRECTIVES_FOR.all(session_id=session_id)
    return [rows.directive(r) for r in found]


def add_directive(
    directive_id: str, text: str, target_id: str | None, priority: bool, created_by: str | None
) -> Step[None]:
    yield ADD_DIRECTIVE.run(
        id=directive_id, text=text, target_id=target_id, priority=int(priority), created_by=created_by, ts=now()
    )
    yield Wake(SESSIONS)


def clear_directives(directive_id: str | None) -> Step[int]:
    if directive_id is None:
        cleared: int = yield CLEAR_ALL.count(ts=now())
    else:
        cleared = yield CLEAR_ONE.count(id=directive_id, ts=now())
    yield Wake(SESSIONS)
    return cleared


# -- project-wide views -----------------------------------------------------------------------------------
def recent_messages(limit: int) -> Step[list[ThreadMessage]]:
    return (yield from with_receipts((yield RECENT.all(limit=limit))))


def counts() -> Step[dict[str, int]]:
    totals = {"messages": int((yield COUNT_MESSAGES.value()))}
    totals.update({s.value: 0 for s in ReceiptStatus})
    for r in (yield COUNT_RECEIPTS.all()):
        totals[r["status"]] = int(r["n"])
    totals["reports"] = int((yield COUNT_REPORTS.value()))
    return totals


# -- snapshots --------------------------------------------------------------------------------------------
def _portable(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return value


def _native(value: Any, kind: str) -> Any:
    """A snapshot value as the column holds it (the dialect then stores it its way)."""
    if value is None:
        return None
    if kind == "list":
        return list(json.loads(value)) if isinstance(value, str) else list(value)
    if kind == "bool":
        return bool(value)
    if kind == "int" and isinstance(value, int | float | str):
        return int(value)
    if kind == "real" and isinstance(value, int | float | str):
        return float(value)
    return value


def dump() -> Step[dict[str, list[dict[str, Any]]]]:
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in TABLES:
        found = yield statement(f"SELECT * FROM {table} ORDER BY {DUMP_ORDER[table]}").all()
        tables[table] = [{k: _portable(v) for k, v in dict(r).items()} for r in found]
    return tables


def is_empty() -> Step[bool]:
    for table in TABLES:
        if (yield statement(f"SELECT 1 FROM {table} LIMIT 1").value()) is not None:
            return False
    return True


def restore(tables: dict[str, list[dict[str, Any]]], replace: bool) -> Step[None]:
    # Foreign keys are checked once at the end, so rows may come in any order.
    yield DEFER_FOREIGN_KEYS.run()
    if not replace and not (yield from is_empty()):
        raise Conflict("The store is not empty.", "Import into a new project, or pass --force to replace it.")
    for table in reversed(TABLES):
        yield statement(f"DELETE FROM {table}").run()
    kinds: dict[str, dict[str, str]] = {}
    for r in (yield COLUMNS.all()):
        kinds.setdefault(r["table_name"], {})[r["column_name"]] = r["kind"]
    for table in TABLES:
        columns = kinds.get(table, {})
        for number, row in enumerate(tables.get(table, []), 1):
            unknown = set(row) - set(columns)
            if unknown:
                raise InvalidArgument(f"Snapshot table {table} has unknown columns: {', '.join(sorted(unknown))}.")
            names = list(row)
            quoted = ", ".join('"' + n + '"' for n in names)
            marks = ", ".join(f":p{i}" for i in range(len(names)))
            insert = statement(f"INSERT INTO {table} ({quoted}) VALUES ({marks})")
            try:
                values = {f"p{i}": _native(row[n], columns[n]) for i, n in enumerate(names)}
                yield insert.run(**values)
            except (Refused, ValueError, TypeError) as exc:
                raise InvalidArgument(
                    f"Snapshot table {table}, row {number}: {exc}.", "Pass an unmodified file from `maestro export`."
                ) from exc
    # Checked here, inside the transaction, rather than at COMMIT (a failed COMMIT is no clear error).
    try:
        dangling = yield CHECK_FOREIGN_KEYS.all()
    except Refused as exc:
        dangling = [exc.what]
    if dangling:
        named = sorted({str(d[0] if not isinstance(d, str) else d) for d in dangling})
        raise InvalidArgument(
            f"The snapshot has {len(dangling)} reference(s) to rows it does not contain (in {', '.join(named)}).",
            "Pass an unmodified file from `maestro export`.",
        )
    for table, column in SEQUENCES:
        yield statement(f"{{RESET_SEQUENCE {table} {column}}}").run()
    yield Wake(("sessions", "tasks"))
