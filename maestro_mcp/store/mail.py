"""Mail and receipts: statements and steps.

Receipts change only by conditional updates (``WHERE status = 'sent'`` …), so
two takers of one inbox never return the same message: on SQLite the write
transaction holds the database lock, on PostgreSQL the rows a take picks are
locked with FOR UPDATE SKIP LOCKED and a concurrent taker picks others.
"""

from __future__ import annotations

from collections.abc import Sequence

from maestro_mcp.errors import Forbidden, NotFound
from maestro_mcp.models import Message, NewMessage, Priority, Receipt, ThreadMessage, Unread, now

from . import rows
from .notify import RECEIPTS, mail_topic
from .rows import MESSAGE_COLUMNS, MESSAGE_FROM, Row
from .sql import Statement
from .steps import Step, Wake

# ON CONFLICT (id): a retry after a lost COMMIT finds the message stored and adds nothing.
INSERT = Statement(
    "INSERT INTO messages (id, thread_id, reply_to, sender_id, subject, body, priority, type, task_id, created_at)"
    " VALUES (:id, :thread_id, :reply_to, :sender_id, :subject, :body, :priority, :type, :task_id, :created_at)"
    " ON CONFLICT (id) DO NOTHING RETURNING seq"
)
INSERT_RECEIPTS = Statement(
    "INSERT INTO receipts (session_id, message_seq, status, priority)"
    " SELECT DISTINCT value, CAST(:seq AS {INT64}), 'sent', CAST(:priority AS INTEGER) FROM {EACH :recipients}"
)
GET = Statement(f"SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.id = :id")
THREAD_EXISTS = Statement("SELECT 1 FROM messages WHERE thread_id = :thread_id LIMIT 1")
UNREAD = Statement(
    "SELECT COUNT(*) AS n, MIN(priority) AS top FROM receipts WHERE session_id = :session_id AND status = 'sent'"
)
# Critical first, then oldest. `picked` is computed once (MATERIALIZED: PostgreSQL would otherwise
# re-run a LIMIT ... FOR UPDATE subquery per row and take more than the limit); the UPDATE then changes
# only what is still unread.
TAKE = Statement(
    "WITH picked AS MATERIALIZED ("
    "  SELECT message_seq FROM receipts WHERE session_id = :session_id AND status = 'sent'"
    "  ORDER BY priority, message_seq LIMIT :limit {SKIP_LOCKED}"
    ") UPDATE receipts SET status = 'delivered', delivered_at = :ts"
    " WHERE session_id = :session_id AND status = 'sent' AND message_seq IN (SELECT message_seq FROM picked)"
    " RETURNING message_seq"
)
# The messages just taken, and (counted in the same statement) how many unread remain.
TAKEN = Statement(
    f"SELECT {MESSAGE_COLUMNS}, (SELECT COUNT(*) FROM receipts WHERE session_id = :session_id AND status = 'sent')"
    f" AS remaining FROM {MESSAGE_FROM} WHERE m.seq {{IN :seqs}} ORDER BY m.priority, m.seq"
)
# Only receipts still `delivered` by exactly that take go back: one acked since, or taken again, stays.
PUT_BACK = Statement(
    "UPDATE receipts SET status = 'sent', delivered_at = NULL"
    " WHERE session_id = :session_id AND status = 'delivered' AND delivered_at = :taken_at"
    " AND message_seq IN (SELECT seq FROM messages WHERE id {IN :ids})"
)
PEEK = Statement(
    f"SELECT {MESSAGE_COLUMNS} FROM receipts r JOIN messages m ON m.seq = r.message_seq"
    " JOIN sessions s ON s.id = m.sender_id"
    " WHERE r.session_id = :session_id AND r.status = 'sent' ORDER BY r.priority, r.message_seq LIMIT :limit"
)
MARK_DELIVERED = Statement(
    "UPDATE receipts SET status = 'delivered', delivered_at = :ts WHERE session_id = :session_id"
    " AND status = 'sent' AND message_seq IN (SELECT seq FROM messages WHERE id {IN :ids}) RETURNING message_seq"
)
IDS_OF = Statement("SELECT id FROM messages WHERE seq {IN :seqs} ORDER BY seq")
RECENT_READ = Statement(
    f"SELECT {MESSAGE_COLUMNS} FROM receipts r JOIN messages m ON m.seq = r.message_seq"
    " JOIN sessions s ON s.id = m.sender_id"
    " WHERE r.session_id = :session_id AND r.status != 'sent' ORDER BY m.seq DESC LIMIT :limit"
)
THREAD = Statement(f"SELECT {MESSAGE_COLUMNS} FROM {MESSAGE_FROM} WHERE m.thread_id = :thread_id ORDER BY m.seq")
RECEIPTS_OF = Statement(
    "SELECT r.message_seq, r.session_id, s.name, r.status, r.delivered_at, r.acked_at"
    " FROM receipts r JOIN sessions s ON s.id = r.session_id WHERE r.message_seq {IN :seqs} ORDER BY s.name"
)
MARK_THREAD = Statement(
    "UPDATE receipts SET status = 'delivered', delivered_at = :ts WHERE session_id = :session_id"
    " AND status = 'sent' AND message_seq IN (SELECT seq FROM messages WHERE thread_id = :thread_id)"
)
# Each id: its message (if any), and whether the session has a receipt for it.
ACK_LOOKUP = Statement(
    "SELECT m.id, m.seq, r.session_id IS NOT NULL AS mine FROM messages m"
    " LEFT JOIN receipts r ON r.message_seq = m.seq AND r.session_id = :session_id WHERE m.id {IN :ids}"
)
ACK = Statement(
    "UPDATE receipts SET status = 'acked', acked_at = :ts, delivered_at = COALESCE(delivered_at, :ts)"
    " WHERE session_id = :session_id AND status != 'acked' AND message_seq {IN :seqs}"
)


def unread_of(row: Row) -> Unread:
    top = row["top"]
    return Unread(count=row["n"], urgent=top is not None and top <= Priority.high.rank)


def insert(message: NewMessage) -> Step[None]:
    seq = yield INSERT.value(
        **message.model_dump(exclude={"recipient_ids", "priority"}), priority=message.priority.rank
    )
    if seq is None:
        return  # a retry after a lost COMMIT: the message and its receipts are already there
    yield INSERT_RECEIPTS.run(recipients=list(message.recipient_ids), seq=seq, priority=message.priority.rank)
    yield Wake(tuple(mail_topic(r) for r in message.recipient_ids))


def get(message_id: str) -> Step[Message | None]:
    row = yield GET.one(id=message_id)
    return rows.message(row) if row else None


def thread_exists(thread_id: str) -> Step[bool]:
    return (yield THREAD_EXISTS.value(thread_id=thread_id)) is not None


def unread(session_id: str) -> Step[Unread]:
    return unread_of((yield UNREAD.one(session_id=session_id)))


def take(session_id: str, limit: int, taken_at: float) -> Step[tuple[list[Message], int]]:
    seqs = [r["message_seq"] for r in (yield TAKE.all(session_id=session_id, limit=limit, ts=taken_at))]
    if not seqs:
        return [], 0
    taken = yield TAKEN.all(session_id=session_id, seqs=seqs)
    yield Wake((RECEIPTS,))
    return [rows.message(r) for r in taken], int(taken[0]["remaining"])


def put_back(session_id: str, message_ids: Sequence[str], taken_at: float) -> Step[int]:
    returned: int = yield PUT_BACK.count(session_id=session_id, ids=list(message_ids), taken_at=taken_at)
    if returned:
        yield Wake((RECEIPTS, mail_topic(session_id)))
    return returned


def peek(session_id: str, limit: int) -> Step[list[Message]]:
    return [rows.message(r) for r in (yield PEEK.all(session_id=session_id, limit=limit))]


def mark_delivered(session_id: str, message_ids: Sequence[str]) -> Step[list[str]]:
    if not message_ids:
        return []
    changed = yield MARK_DELIVERED.all(session_id=session_id, ids=list(dict.fromkeys(message_ids)), ts=now())
    if not changed:
        return []
    yield Wake((RECEIPTS,))
    return [r["id"] for r in (yield IDS_OF.all(seqs=[r["message_seq"] for r in changed]))]


def recent_read(session_id: str, limit: int) -> Step[list[Message]]:
    return [rows.message(r) for r in (yield RECENT_READ.all(session_id=session_id, limit=limit))]


def with_receipts(found: list[Row]) -> Step[list[ThreadMessage]]:
    """Messages with every recipient's receipt (recipients by name)."""
    receipts: dict[int, list[Receipt]] = {}
    if found:
        for r in (yield RECEIPTS_OF.all(seqs=[m["seq"] for m in found])):
            receipts.setdefault(r["message_seq"], []).append(rows.receipt(r))
    return [ThreadMessage(**rows.message(m).model_dump(), receipts=receipts.get(m["seq"], [])) for m in found]


def thread(thread_id: str) -> Step[list[ThreadMessage]]:
    return (yield from with_receipts((yield THREAD.all(thread_id=thread_id))))


def mark_thread_delivered(thread_id: str, session_id: str) -> Step[int]:
    marked: int = yield MARK_THREAD.count(thread_id=thread_id, session_id=session_id, ts=now())
    if marked:
        yield Wake((RECEIPTS,))
    return marked


def ack(session_id: str, message_ids: Sequence[str]) -> Step[list[str]]:
    ids = list(dict.fromkeys(message_ids))
    found = {r["id"]: r for r in (yield ACK_LOOKUP.all(session_id=session_id, ids=ids))}
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise NotFound(
            f"No message with id {', '.join(map(repr, unknown))}.",
            "Pass message_id values from mail_inbox or mail_wait results.",
        )
    foreign = [i for i in ids if not found[i]["mine"]]
    if foreign:
        raise Forbidden(
            f"Message {', '.join(map(repr, foreign))} was not sent to you.",
            "You can only acknowledge mail addressed to you; nothing was acknowledged.",
        )
    yield ACK.run(session_id=session_id, seqs=[found[i]["seq"] for i in ids], ts=now())
    yield Wake((RECEIPTS,))
    return ids
