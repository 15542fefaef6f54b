"""The numbered migrations, written once for every backend. Append only: never edit a released one.

Type tokens keep one text for both backends (see each dialect's token table):
``{REAL}`` epoch seconds, ``{SEQ}`` an auto-numbered primary key and ``{SEQ_REF}``
a column pointing at one, ``{LIST}`` a list of text with ``{EMPTY_LIST}`` as its
default, ``{FLAG}`` a boolean with ``{FALSE}``, ``{REFERENCES table(column)}`` a
foreign key (DEFERRABLE on PostgreSQL, so that a bulk copy may insert a child
before its parent), ``{WITHOUT_ROWID}`` SQLite's clustered tables.

SQLite stores made by earlier releases (versions 1-4, from per-backend texts)
render to exactly these tables, so they open and upgrade like any other.

To add a table: append a migration here, add the table to `TABLES` (parents
before children) and its dump order to `DUMP_ORDER`; see the package docstring.
"""

from __future__ import annotations

from maestro_mcp.errors import SchemaTooNew
from maestro_mcp.models import now

from .sql import Statement
from .steps import Lock, Step

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE sessions (
            id           TEXT PRIMARY KEY,
            name         TEXT NOT NULL UNIQUE,
            role         TEXT NOT NULL,
            agent        TEXT NOT NULL,
            parent_id    TEXT {REFERENCES sessions(id)},
            status       TEXT NOT NULL,
            workspace    TEXT,
            pid          INTEGER,
            token_hash   TEXT,
            created_at   {REAL} NOT NULL,
            last_seen_at {REAL} NOT NULL,
            ended_at     {REAL},
            exit_code    INTEGER
        );
        CREATE INDEX sessions_parent ON sessions(parent_id);
        CREATE UNIQUE INDEX sessions_token ON sessions(token_hash) WHERE token_hash IS NOT NULL;

        CREATE TABLE messages (
            seq        {SEQ},
            id         TEXT NOT NULL UNIQUE,
            thread_id  TEXT NOT NULL,
            reply_to   TEXT,
            sender_id  TEXT NOT NULL {REFERENCES sessions(id)},
            subject    TEXT NOT NULL,
            body       TEXT NOT NULL,
            priority   INTEGER NOT NULL,
            type       TEXT NOT NULL,
            task_id    TEXT,
            created_at {REAL} NOT NULL
        );
        CREATE INDEX messages_thread ON messages(thread_id, seq);

        -- One row per recipient. priority is copied from the message so that
        -- "my unread mail, critical first, oldest first" is one index range.
        CREATE TABLE receipts (
            session_id   TEXT NOT NULL {REFERENCES sessions(id)},
            message_seq  {SEQ_REF} NOT NULL {REFERENCES messages(seq)},
            status       TEXT NOT NULL,
            priority     INTEGER NOT NULL,
            delivered_at {REAL},
            acked_at     {REAL},
            PRIMARY KEY (session_id, message_seq)
        ){WITHOUT_ROWID};
        CREATE INDEX receipts_unread ON receipts(session_id, status, priority, message_seq);
        CREATE INDEX receipts_message ON receipts(message_seq);

        CREATE TABLE directives (
            id         TEXT PRIMARY KEY,
            text       TEXT NOT NULL,
            target_id  TEXT {REFERENCES sessions(id)},
            priority   INTEGER NOT NULL DEFAULT 0,
            created_by TEXT {REFERENCES sessions(id)},
            created_at {REAL} NOT NULL,
            cleared_at {REAL}
        );
        """,
    ),
    (
        2,
        """
        CREATE TABLE tasks (
            seq             {SEQ},
            id              TEXT NOT NULL UNIQUE,
            key             TEXT,
            title           TEXT NOT NULL,
            description     TEXT NOT NULL DEFAULT '',
            acceptance      TEXT NOT NULL DEFAULT '',
            status          TEXT NOT NULL,
            priority        INTEGER NOT NULL DEFAULT 0,
            wave            INTEGER NOT NULL DEFAULT 0,
            parent_id       TEXT {REFERENCES tasks(id)},
            files           {LIST} NOT NULL DEFAULT {EMPTY_LIST},
            assignee_id     TEXT {REFERENCES sessions(id)},
            created_by      TEXT {REFERENCES sessions(id)},
            result          TEXT,
            artifacts       {LIST} NOT NULL DEFAULT {EMPTY_LIST},
            blocked_reason  TEXT,
            blocked_on_deps {FLAG} NOT NULL DEFAULT {FALSE},
            attempts        INTEGER NOT NULL DEFAULT 0,
            created_at      {REAL} NOT NULL,
            updated_at      {REAL} NOT NULL
        );
        CREATE INDEX tasks_ready ON tasks(status, priority DESC, seq);
        CREATE INDEX tasks_assignee ON tasks(assignee_id, status);
        CREATE INDEX tasks_parent ON tasks(parent_id);

        CREATE TABLE task_deps (
            task_id    TEXT NOT NULL {REFERENCES tasks(id)},
            depends_on TEXT NOT NULL {REFERENCES tasks(id)},
            PRIMARY KEY (task_id, depends_on)
        ){WITHOUT_ROWID};
        CREATE INDEX task_deps_reverse ON task_deps(depends_on, task_id);

        CREATE TABLE reports (
            seq        {SEQ},
            id         TEXT NOT NULL UNIQUE,
            session_id TEXT NOT NULL {REFERENCES sessions(id)},
            task_id    TEXT {REFERENCES tasks(id)},
            kind       TEXT NOT NULL,
            summary    TEXT NOT NULL,
            artifacts  {LIST} NOT NULL DEFAULT {EMPTY_LIST},
            percent    {REAL},
            created_at {REAL} NOT NULL
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
            seq             {SEQ},
            id              TEXT NOT NULL UNIQUE,
            session_id      TEXT NOT NULL {REFERENCES sessions(id)},
            decider_id      TEXT {REFERENCES sessions(id)},
            tool            TEXT NOT NULL,
            input           TEXT NOT NULL,
            call            TEXT NOT NULL DEFAULT '{}',
            reason          TEXT NOT NULL,
            status          TEXT NOT NULL,
            created_at      {REAL} NOT NULL,
            expires_at      {REAL} NOT NULL,
            decided_at      {REAL},
            decided_by      TEXT {REFERENCES sessions(id)},
            decision_reason TEXT,
            rule            TEXT
        );
        CREATE INDEX approvals_status ON approvals(status, seq);
        CREATE INDEX approvals_session ON approvals(session_id, status);

        -- Rules an approval remembered (remember=True), for the team of the session that decided.
        CREATE TABLE policy_rules (
            seq        {SEQ},
            rule       TEXT NOT NULL,
            decision   TEXT NOT NULL,
            scope_id   TEXT NOT NULL {REFERENCES sessions(id)},
            request_id TEXT,
            created_at {REAL} NOT NULL
        );
        CREATE INDEX policy_rules_scope ON policy_rules(scope_id);
        """,
    ),
    (
        5,
        """
        -- The recent activity of each session: a bounded window (older events are dropped, and counted
        -- in session_stats.dropped).
        CREATE TABLE activity (
            session_id TEXT NOT NULL {REFERENCES sessions(id)},
            seq        INTEGER NOT NULL,
            at         {REAL} NOT NULL,
            kind       TEXT NOT NULL,
            summary    TEXT NOT NULL,
            tool       TEXT NOT NULL,
            ok         {FLAG},
            PRIMARY KEY (session_id, seq)
        ){WITHOUT_ROWID};

        -- What each session did and spent, its limits, and how it was launched (for a respawn).
        CREATE TABLE session_stats (
            session_id         TEXT PRIMARY KEY {REFERENCES sessions(id)},
            events             INTEGER NOT NULL DEFAULT 0,
            dropped            INTEGER NOT NULL DEFAULT 0,
            skipped            INTEGER NOT NULL DEFAULT 0,
            lost               INTEGER NOT NULL DEFAULT 0,
            input_tokens       {INT64} NOT NULL DEFAULT 0,
            output_tokens      {INT64} NOT NULL DEFAULT 0,
            cached_tokens      {INT64} NOT NULL DEFAULT 0,
            turns              INTEGER NOT NULL DEFAULT 0,
            cost_usd           {REAL} NOT NULL DEFAULT 0,
            cost_estimated     {FLAG} NOT NULL DEFAULT {FALSE},
            doing              TEXT,
            doing_at           {REAL},
            active_at          {REAL},
            conversation_id    TEXT,
            model              TEXT,
            budget_usd         {REAL},
            max_turns          INTEGER,
            budget_warned      {FLAG} NOT NULL DEFAULT {FALSE},
            silence_noticed_at {REAL},
            restarts           INTEGER NOT NULL DEFAULT 0,
            launch             TEXT NOT NULL DEFAULT '{}',
            relay_id           TEXT,
            relay_batch        INTEGER NOT NULL DEFAULT 0
        );

        -- Spend per task and worker: usage is counted to the task its worker had in progress.
        CREATE TABLE task_usage (
            task_id        TEXT NOT NULL {REFERENCES tasks(id)},
            session_id     TEXT NOT NULL {REFERENCES sessions(id)},
            input_tokens   {INT64} NOT NULL DEFAULT 0,
            output_tokens  {INT64} NOT NULL DEFAULT 0,
            cached_tokens  {INT64} NOT NULL DEFAULT 0,
            turns          INTEGER NOT NULL DEFAULT 0,
            cost_usd       {REAL} NOT NULL DEFAULT 0,
            cost_estimated {FLAG} NOT NULL DEFAULT {FALSE},
            PRIMARY KEY (task_id, session_id)
        );

        -- Who held a task when its worker ended: a respawned worker takes it back if still unclaimed.
        ALTER TABLE tasks ADD COLUMN released_from TEXT;
        """,
    ),
    (
        6,
        """
        -- Shared state: JSON values by key. `version` only grows, also across expiry, so that a
        -- compare-and-set against a version seen before the key expired can never win.
        CREATE TABLE state (
            key        TEXT PRIMARY KEY,
            value      TEXT NOT NULL,
            version    INTEGER NOT NULL,
            set_by     TEXT,
            set_at     {REAL} NOT NULL,
            expires_at {REAL}
        );
        """,
    ),
    (
        7,
        """
        -- Liveness without a spawner: each serve process writes its host and a heartbeat every few
        -- seconds, and other servers end a session whose pid is gone on the same host, or whose heartbeat
        -- has expired on another.
        ALTER TABLE sessions ADD COLUMN host TEXT;
        ALTER TABLE sessions ADD COLUMN heartbeat_at {REAL};
        CREATE INDEX sessions_heartbeat ON sessions(heartbeat_at) WHERE ended_at IS NULL;
        """,
    ),
]

LATEST = MIGRATIONS[-1][0]

# Every table a snapshot holds, parents before children, and the order its rows are dumped in.
TABLES = (
    "sessions", "messages", "receipts", "directives", "tasks", "task_deps", "reports", "approvals", "policy_rules",
    "activity", "session_stats", "task_usage",
    "state",
)  # fmt: skip
DUMP_ORDER = {
    "sessions": "created_at, id",
    "messages": "seq",
    "receipts": "message_seq, session_id",
    "directives": "created_at, id",
    "tasks": "seq",
    "task_deps": "task_id, depends_on",
    "reports": "seq",
    "approvals": "seq",
    "policy_rules": "seq",
    "activity": "session_id, seq",
    "session_stats": "session_id",
    "task_usage": "task_id, session_id",
    "state": "key",
}
# Auto-numbered columns: after a restore, new rows must be numbered after the restored ones.
SEQUENCES = (("messages", "seq"), ("tasks", "seq"), ("reports", "seq"), ("approvals", "seq"), ("policy_rules", "seq"))

_VERSIONS = Statement(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at {REAL} NOT NULL)"
)
_CURRENT = Statement("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
_APPLIED = Statement("INSERT INTO schema_migrations (version, applied_at) VALUES (:version, :ts)")
VERSION = Statement("SELECT MAX(version) FROM schema_migrations")


_HAS_VERSIONS = Statement("{HAS_TABLE schema_migrations}")


def current() -> Step[int]:
    """The schema version, 0 for a store not made yet."""
    if (yield _HAS_VERSIONS.value()) is None:
        return 0
    return int((yield _CURRENT.value()))


def version() -> Step[int]:
    return int((yield VERSION.value()))


def statements(script: str) -> list[Statement]:
    """A migration's statements, one by one (drivers run one statement per call)."""
    parts = (p.strip() for p in script.split(";"))
    return [Statement(p) for p in parts if p and not all(line.strip().startswith("--") for line in p.splitlines())]


def migrate(location: str) -> Step[int]:
    """Bring the schema up to date in one write transaction, so that racing processes take turns."""
    yield Lock("migrate")
    yield _VERSIONS.run()
    current = int((yield _CURRENT.value()))
    if current > LATEST:
        raise SchemaTooNew(
            f"The store {location} has schema version {current}, newer than this maestro knows ({LATEST}).",
            "Upgrade maestro (pip install -U maestro-coord-mcp) to use this store.",
        )
    for version, script in MIGRATIONS:
        if version > current:
            for statement in statements(script):
                yield statement.run()
            yield _APPLIED.run(version=version, ts=now())
    return max(current, LATEST)
