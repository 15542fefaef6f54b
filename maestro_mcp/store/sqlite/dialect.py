"""How SQLite spells what the shared statements leave open.

Lists are JSON text, read back with `json_each`, so a list parameter is one bound
value whatever its length (SQLite caps the number of bound parameters). Flags
are 0/1. Write transactions are serialised by the database lock, so row locks
and named locks need no text.
"""

from __future__ import annotations

from maestro_mcp.store.sql import Dialect

TOKENS = {
    # Types in table definitions.
    "REAL": "REAL",
    "SEQ": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "SEQ_REF": "INTEGER",
    "INT64": "INTEGER",
    "LIST": "TEXT",
    "EMPTY_LIST": "'[]'",
    "FLAG": "INTEGER",
    "FALSE": "0",
    "REFERENCES": "REFERENCES {0}",
    "WITHOUT_ROWID": " WITHOUT ROWID",
    # Lists, comparisons, locks.
    "IN": "IN (SELECT value FROM json_each({0}))",
    "NOT_IN": "NOT IN (SELECT value FROM json_each({0}))",
    "EACH": "json_each({0})",
    "AGG": "json_group_array({0})",
    "DISTINCT_FROM": "IS NOT",
    "FOR_UPDATE": "",
    "SKIP_LOCKED": "",
    # Whole statements about the database itself.
    "COLUMNS": (
        "SELECT m.name AS table_name, p.name AS column_name,"
        " CASE p.type WHEN 'INTEGER' THEN 'int' WHEN 'REAL' THEN 'real' ELSE 'text' END AS kind"
        " FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'"
    ),
    "HAS_TABLE": "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{0}'",
    "DEFER_FOREIGN_KEYS": "PRAGMA defer_foreign_keys = ON",
    "CHECK_FOREIGN_KEYS": "PRAGMA foreign_key_check",
    # AUTOINCREMENT remembers the highest number ever inserted, restored rows included.
    "RESET_SEQUENCE": "SELECT 1",
}

SQLITE = Dialect("sqlite", placeholder=lambda n: f"?{n}", tokens=TOKENS, lists_as_json=True, flags_as_int=True)
