"""The schema texts released before the migrations were written once (one list per backend), frozen.

test_store_upgrades.py builds stores from them, as earlier releases did, and opens them with this one.
"""

from __future__ import annotations

SQLITE: list[tuple[int, str]] = [
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

SQLITE.append(
    (
        2,
        """
        CREATE TABLE tasks (
            seq             INTEGER PRIMARY KEY AUTOINCREMENT,
            id              TEXT NOT NULL UNIQUE,
            key             TEXT,
            title           TEXT NOT NULL,
            description     TEXT NOT NULL DEFAULT '',
            acceptance      TEXT NOT NULL DEFAULT '',
            status          TEXT NOT NULL,
            priority        INTEGER NOT NULL DEFAULT 0,
            wave            INTEGER NOT NULL DEFAULT 0,
            parent_id       TEXT REFERENCES tasks(id),
            files           TEXT NOT NULL DEFAULT '[]',
            assignee_id     TEXT REFERENCES sessions(id),
            created_by      TEXT REFERENCES sessions(id),
            result          TEXT,
            artifacts       TEXT NOT NULL DEFAULT '[]',
            blocked_reason  TEXT,
            blocked_on_deps INTEGER NOT NULL DEFAULT 0,
            attempts        INTEGER NOT NULL DEFAULT 0,
            created_at      REAL NOT NULL,
            updated_at      REAL NOT NULL
        );
        CREATE INDEX tasks_ready ON tasks(status, priority DESC, seq);
        CREATE INDEX tasks_assignee ON tasks(assignee_id, status);
        CREATE INDEX tasks_parent ON tasks(parent_id);

        CREATE TABLE task_deps (
            task_id    TEXT NOT NULL REFERENCES tasks(id),
            depends_on TEXT NOT NULL REFERENCES tasks(id),
            PRIMARY KEY (task_id, depends_on)
        ) WITHOUT ROWID;
        CREATE INDEX task_deps_reverse ON task_deps(depends_on, task_id);

        CREATE TABLE reports (
            seq        INTEGER PRIMARY KEY AUTOINCREMENT,
            id         TEXT NOT NULL UNIQUE,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            task_id    TEXT REFERENCES tasks(id),
            kind       TEXT NOT NULL,
            summary    TEXT NOT NULL,
            artifacts  TEXT NOT NULL DEFAULT '[]',
            percent    REAL,
            created_at REAL NOT NULL
        );
        CREATE INDEX reports_session ON reports(session_id, seq);
        CREATE INDEX reports_task ON reports(task_id, seq);
        """,
    )
)

SQLITE.append(
    (
        3,
        """
        -- Spawned workers: who watches the process, where its output goes, what it was told.
        ALTER TABLE sessions ADD COLUMN spawner_pid INTEGER;
        ALTER TABLE sessions ADD COLUMN log_path TEXT;
        ALTER TABLE sessions ADD COLUMN directive TEXT;
        ALTER TABLE sessions ADD COLUMN profile TEXT;
        ALTER TABLE sessions ADD COLUMN isolation TEXT;
        ALTER TABLE sessions ADD COLUMN branch TEXT;
        """,
    )
)

SQLITE.append(
    (
        4,
        """
        -- Permission requests the policy did not decide, and their answers (who, when, what, why).
        CREATE TABLE approvals (
            seq             INTEGER PRIMARY KEY AUTOINCREMENT,
            id              TEXT NOT NULL UNIQUE,
            session_id      TEXT NOT NULL REFERENCES sessions(id),
            decider_id      TEXT REFERENCES sessions(id),
            tool            TEXT NOT NULL,
            input           TEXT NOT NULL,
            call            TEXT NOT NULL DEFAULT '{}',
            reason          TEXT NOT NULL,
            status          TEXT NOT NULL,
            created_at      REAL NOT NULL,
            expires_at      REAL NOT NULL,
            decided_at      REAL,
            decided_by      TEXT REFERENCES sessions(id),
            decision_reason TEXT,
            rule            TEXT
        );
        CREATE INDEX approvals_status ON approvals(status, seq);
        CREATE INDEX approvals_session ON approvals(session_id, status);

        -- Rules an approval remembered (remember=True), for the team of the session that decided.
        CREATE TABLE policy_rules (
            seq        INTEGER PRIMARY KEY AUTOINCREMENT,
            rule       TEXT NOT NULL,
            decision   TEXT NOT NULL,
            scope_id   TEXT NOT NULL REFERENCES sessions(id),
            request_id TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX policy_rules_scope ON policy_rules(scope_id);
        """,
    )
)

POSTGRES: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE sessions (
            id           TEXT PRIMARY KEY,
            name         TEXT NOT NULL UNIQUE,
            role         TEXT NOT NULL,
            agent        TEXT NOT NULL,
            parent_id    TEXT REFERENCES sessions(id) DEFERRABLE,
            status       TEXT NOT NULL,
            workspace    TEXT,
            pid          INTEGER,
            token_hash   TEXT,
            created_at   DOUBLE PRECISION NOT NULL,
            last_seen_at DOUBLE PRECISION NOT NULL,
            ended_at     DOUBLE PRECISION,
            exit_code    INTEGER
        );
        CREATE INDEX sessions_parent ON sessions(parent_id);
        CREATE UNIQUE INDEX sessions_token ON sessions(token_hash) WHERE token_hash IS NOT NULL;

        CREATE TABLE messages (
            seq        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            id         TEXT NOT NULL UNIQUE,
            thread_id  TEXT NOT NULL,
            reply_to   TEXT,
            sender_id  TEXT NOT NULL REFERENCES sessions(id) DEFERRABLE,
            subject    TEXT NOT NULL,
            body       TEXT NOT NULL,
            priority   INTEGER NOT NULL,
            type       TEXT NOT NULL,
            task_id    TEXT,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX messages_thread ON messages(thread_id, seq);

        -- One row per recipient; priority is copied from the message so that
        -- "my unread mail, critical first, oldest first" is one index range.
        CREATE TABLE receipts (
            session_id   TEXT NOT NULL REFERENCES sessions(id) DEFERRABLE,
            message_seq  BIGINT NOT NULL REFERENCES messages(seq) DEFERRABLE,
            status       TEXT NOT NULL,
            priority     INTEGER NOT NULL,
            delivered_at DOUBLE PRECISION,
            acked_at     DOUBLE PRECISION,
            PRIMARY KEY (session_id, message_seq)
        );
        CREATE INDEX receipts_unread ON receipts(session_id, status, priority, message_seq);
        CREATE INDEX receipts_message ON receipts(message_seq);

        CREATE TABLE directives (
            id         TEXT PRIMARY KEY,
            text       TEXT NOT NULL,
            target_id  TEXT REFERENCES sessions(id) DEFERRABLE,
            priority   INTEGER NOT NULL DEFAULT 0,
            created_by TEXT REFERENCES sessions(id) DEFERRABLE,
            created_at DOUBLE PRECISION NOT NULL,
            cleared_at DOUBLE PRECISION
        );
        """,
    ),
    (
        2,
        """
        CREATE TABLE tasks (
            seq             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            id              TEXT NOT NULL UNIQUE,
            key             TEXT,
            title           TEXT NOT NULL,
            description     TEXT NOT NULL DEFAULT '',
            acceptance      TEXT NOT NULL DEFAULT '',
            status          TEXT NOT NULL,
            priority        INTEGER NOT NULL DEFAULT 0,
            wave            INTEGER NOT NULL DEFAULT 0,
            parent_id       TEXT REFERENCES tasks(id) DEFERRABLE,
            files           TEXT[] NOT NULL DEFAULT '{}',
            assignee_id     TEXT REFERENCES sessions(id) DEFERRABLE,
            created_by      TEXT REFERENCES sessions(id) DEFERRABLE,
            result          TEXT,
            artifacts       TEXT[] NOT NULL DEFAULT '{}',
            blocked_reason  TEXT,
            blocked_on_deps BOOLEAN NOT NULL DEFAULT FALSE,
            attempts        INTEGER NOT NULL DEFAULT 0,
            created_at      DOUBLE PRECISION NOT NULL,
            updated_at      DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX tasks_ready ON tasks(status, priority DESC, seq);
        CREATE INDEX tasks_assignee ON tasks(assignee_id, status);
        CREATE INDEX tasks_parent ON tasks(parent_id);

        CREATE TABLE task_deps (
            task_id    TEXT NOT NULL REFERENCES tasks(id) DEFERRABLE,
            depends_on TEXT NOT NULL REFERENCES tasks(id) DEFERRABLE,
            PRIMARY KEY (task_id, depends_on)
        );
        CREATE INDEX task_deps_reverse ON task_deps(depends_on, task_id);

        CREATE TABLE reports (
            seq        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            id         TEXT NOT NULL UNIQUE,
            session_id TEXT NOT NULL REFERENCES sessions(id) DEFERRABLE,
            task_id    TEXT REFERENCES tasks(id) DEFERRABLE,
            kind       TEXT NOT NULL,
            summary    TEXT NOT NULL,
            artifacts  TEXT[] NOT NULL DEFAULT '{}',
            percent    DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX reports_session ON reports(session_id, seq);
        CREATE INDEX reports_task ON reports(task_id, seq);
        """,
    ),
    (
        3,
        """
        -- Spawned workers: who watches the process, where its output goes, what it was told.
        ALTER TABLE sessions ADD COLUMN spawner_pid INTEGER;
        ALTER TABLE sessions ADD COLUMN log_path TEXT;
        ALTER TABLE sessions ADD COLUMN directive TEXT;
        ALTER TABLE sessions ADD COLUMN profile TEXT;
        ALTER TABLE sessions ADD COLUMN isolation TEXT;
        ALTER TABLE sessions ADD COLUMN branch TEXT;
        """,
    ),
    (
        4,
        """
        -- Permission requests the policy did not decide, and their answers (who, when, what, why).
        CREATE TABLE approvals (
            seq             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            id              TEXT NOT NULL UNIQUE,
            session_id      TEXT NOT NULL REFERENCES sessions(id) DEFERRABLE,
            decider_id      TEXT REFERENCES sessions(id) DEFERRABLE,
            tool            TEXT NOT NULL,
            input           TEXT NOT NULL,
            call            TEXT NOT NULL DEFAULT '{}',
            reason          TEXT NOT NULL,
            status          TEXT NOT NULL,
            created_at      DOUBLE PRECISION NOT NULL,
            expires_at      DOUBLE PRECISION NOT NULL,
            decided_at      DOUBLE PRECISION,
            decided_by      TEXT REFERENCES sessions(id) DEFERRABLE,
            decision_reason TEXT,
            rule            TEXT
        );
        CREATE INDEX approvals_status ON approvals(status, seq);
        CREATE INDEX approvals_session ON approvals(session_id, status);

        CREATE TABLE policy_rules (
            seq        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            rule       TEXT NOT NULL,
            decision   TEXT NOT NULL,
            scope_id   TEXT NOT NULL REFERENCES sessions(id) DEFERRABLE,
            request_id TEXT,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX policy_rules_scope ON policy_rules(scope_id);
        """,
    ),
]
