"""Numbered migrations of the SQLite store. Append only: never edit a released one."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE sessions (
            id           TEXT PRIMARY KEY,
            name         TEXT NOT NULL UNIQUE,
            role         TEXT NOT NULL,
            agent        TEXT NOT NULL,
            parent_id    TEXT REFERENCES sessions(id),
            status       TEXT NOT NULL,
            workspace    TEXT,
            pid          INTEGER,
            token_hash   TEXT,
            created_at   REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            ended_at     REAL,
            exit_code    INTEGER
        );
        CREATE INDEX sessions_parent ON sessions(parent_id);
        CREATE UNIQUE INDEX sessions_token ON sessions(token_hash) WHERE token_hash IS NOT NULL;

        CREATE TABLE messages (
            seq        INTEGER PRIMARY KEY AUTOINCREMENT,
            id         TEXT NOT NULL UNIQUE,
            thread_id  TEXT NOT NULL,
            reply_to   TEXT,
            sender_id  TEXT NOT NULL REFERENCES sessions(id),
            subject    TEXT NOT NULL,
            body       TEXT NOT NULL,
            priority   INTEGER NOT NULL,
            type       TEXT NOT NULL,
            task_id    TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX messages_thread ON messages(thread_id, seq);

        -- One row per recipient. priority is copied from the message so that
        -- "my unread mail, critical first, oldest first" is one index range.
        CREATE TABLE receipts (
            session_id   TEXT NOT NULL REFERENCES sessions(id),
            message_seq  INTEGER NOT NULL REFERENCES messages(seq),
            status       TEXT NOT NULL,
            priority     INTEGER NOT NULL,
            delivered_at REAL,
            acked_at     REAL,
            PRIMARY KEY (session_id, message_seq)
        ) WITHOUT ROWID;
        CREATE INDEX receipts_unread ON receipts(session_id, status, priority, message_seq);
        CREATE INDEX receipts_message ON receipts(message_seq);

        CREATE TABLE directives (
            id         TEXT PRIMARY KEY,
            text       TEXT NOT NULL,
            target_id  TEXT REFERENCES sessions(id),
            priority   INTEGER NOT NULL DEFAULT 0,
            created_by TEXT REFERENCES sessions(id),
            created_at REAL NOT NULL,
            cleared_at REAL
        );
        """,
    ),
]
