"""Mail, receipts and directives on PostgreSQL (mixed into `PostgresStore`).

Receipts change only by conditional updates: `take_unread` locks the rows it
takes with FOR UPDATE SKIP LOCKED, so concurrent takers of one inbox (two
servers acting as the same session) never return the same message twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from maestro_mcp.errors import Forbidden, NotFound
from maestro_mcp.models import (
    Directive,
    Message,
    NewMessage,
    Priority,
    Receipt,
    ReceiptStatus,
    ThreadMessage,
    Unread,
    iso,
    now,
)

from . import rows as rows_
from .notify import RECEIPTS, mail_topic
from .postgres_base import PgOps, Tx

_MESSAGE_COLUMNS = rows_.MESSAGE_COLUMNS
_MESSAGE_FROM = rows_.MESSAGE_FROM


_message = rows_.message


def count(status: str) -> int:
    """Rows touched, from a command tag such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])


async def _with_receipts(conn: Any, rows: Sequence[Any]) -> list[ThreadMessage]:
    """Messages with every recipient's receipt (recipients by name)."""
    receipts: dict[int, list[Receipt]] = {}
    seqs = [r["seq"] for r in rows]
    if seqs:
        for r in await conn.fetch(
            "SELECT r.message_seq, r.session_id, s.name, r.status, r.delivered_at, r.acked_at"
            " FROM receipts r JOIN sessions s ON s.id = r.session_id WHERE r.message_seq = ANY($1::bigint[])"
            " ORDER BY s.name",
            seqs,
        ):
            receipts.setdefault(r["message_seq"], []).append(
                Receipt(
                    session_id=r["session_id"],
                    name=r["name"],
                    status=ReceiptStatus(r["status"]),
                    delivered_at=iso(r["delivered_at"]),
                    acked_at=iso(r["acked_at"]),
                )
            )
    return [ThreadMessage(**_message(row).model_dump(), receipts=receipts.get(row["seq"], [])) for row in rows]


async def _directives(conn: Any, session_id: str | None) -> list[Directive]:
    """Active directives concerning `session_id` (everyone's with None), oldest first."""
    concerning = "" if session_id is None else " AND (d.target_id IS NULL OR d.target_id = $1)"
    rows = await conn.fetch(
        "SELECT d.id, d.text, d.priority, d.created_at, s.name AS target FROM directives d"
        " LEFT JOIN sessions s ON s.id = d.target_id"
        f" WHERE d.cleared_at IS NULL{concerning} ORDER BY d.created_at, d.id",
        *(() if session_id is None else (session_id,)),
    )
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


class PostgresMail(PgOps):
    """The mail half of `PostgresStore`; uses its `_read` and `_write`."""

    # -- mail -----------------------------------------------------------------
    async def insert_message(self, message: NewMessage) -> None:
        async def insert(tx: Tx) -> None:
            seq = await tx.conn.fetchval(
                "INSERT INTO messages (id, thread_id, reply_to, sender_id, subject, body, priority, type,"
                " task_id, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
                " ON CONFLICT (id) DO NOTHING RETURNING seq",
                message.id,
                message.thread_id,
                message.reply_to,
                message.sender_id,
                message.subject,
                message.body,
                message.priority.rank,
                message.type.value,
                message.task_id,
                message.created_at,
            )
            if seq is None:
                return  # a retry after a lost COMMIT: the message and its receipts are already there
            await tx.conn.execute(
                "INSERT INTO receipts (session_id, message_seq, status, priority)"
                " SELECT DISTINCT r, $2::bigint, 'sent', $3::integer FROM unnest($1::text[]) AS r",
                list(message.recipient_ids),
                seq,
                message.priority.rank,
            )
            await tx.notify([mail_topic(rid) for rid in message.recipient_ids])

        await self._write(insert, idempotent=True)

    async def get_message(self, message_id: str) -> Message | None:
        row = await self._read(
            lambda c: c.fetchrow(f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.id = $1", message_id)
        )
        return _message(row) if row else None

    async def thread_exists(self, thread_id: str) -> bool:
        found = await self._read(lambda c: c.fetchval("SELECT 1 FROM messages WHERE thread_id = $1 LIMIT 1", thread_id))
        return found is not None

    @staticmethod
    async def _unread_on(conn: Any, session_id: str) -> Unread:
        row = await conn.fetchrow(
            "SELECT COUNT(*) AS n, MIN(priority) AS top FROM receipts WHERE session_id = $1 AND status = 'sent'",
            session_id,
        )
        top = row["top"]
        return Unread(count=row["n"], urgent=top is not None and top <= Priority.high.rank)

    async def unread(self, session_id: str) -> Unread:
        return await self._read(lambda c: self._unread_on(c, session_id))

    async def take_unread(self, session_id: str, limit: int) -> tuple[list[Message], int]:
        if (await self.unread(session_id)).count == 0:
            return [], 0  # nothing to take: spare a write transaction

        async def take(tx: Tx) -> tuple[list[Message], int]:
            # SKIP LOCKED: a concurrent taker of the same inbox takes other messages, never the same ones.
            rows = await tx.conn.fetch(
                "WITH picked AS ("
                "  SELECT message_seq FROM receipts WHERE session_id = $1 AND status = 'sent'"
                "  ORDER BY priority, message_seq LIMIT $2 FOR UPDATE SKIP LOCKED"
                "), taken AS ("
                "  UPDATE receipts r SET status = 'delivered', delivered_at = $3 FROM picked p"
                "  WHERE r.session_id = $1 AND r.message_seq = p.message_seq AND r.status = 'sent'"
                "  RETURNING r.message_seq"
                f") SELECT {_MESSAGE_COLUMNS} FROM taken t JOIN {_MESSAGE_FROM} ON m.seq = t.message_seq"
                " ORDER BY m.priority, m.seq",
                session_id,
                limit,
                now(),
            )
            if not rows:
                return [], 0
            await tx.notify([RECEIPTS])
            remaining = (await self._unread_on(tx.conn, session_id)).count
            return [_message(r) for r in rows], remaining

        return await self._write(take)

    async def recent_read(self, session_id: str, limit: int) -> list[Message]:
        rows = await self._read(
            lambda c: c.fetch(
                f"SELECT {_MESSAGE_COLUMNS} FROM receipts r JOIN {_MESSAGE_FROM} ON m.seq = r.message_seq"
                " WHERE r.session_id = $1 AND r.status != 'sent' ORDER BY m.seq DESC LIMIT $2",
                session_id,
                limit,
            )
        )
        return [_message(r) for r in rows]

    async def thread(self, thread_id: str) -> list[ThreadMessage]:
        async def thread(conn: Any) -> list[ThreadMessage]:
            rows = await conn.fetch(
                f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} WHERE m.thread_id = $1 ORDER BY m.seq", thread_id
            )
            return await _with_receipts(conn, rows)

        result: list[ThreadMessage] = await self._read(thread, snapshot=True)
        return result

    async def recent_messages(self, limit: int) -> list[ThreadMessage]:
        async def recent(conn: Any) -> list[ThreadMessage]:
            rows = await conn.fetch(
                f"SELECT {_MESSAGE_COLUMNS} FROM {_MESSAGE_FROM} ORDER BY m.seq DESC LIMIT $1", limit
            )
            return await _with_receipts(conn, rows)

        result: list[ThreadMessage] = await self._read(recent, snapshot=True)
        return result

    async def counts(self) -> dict[str, int]:
        async def count_all(conn: Any) -> dict[str, int]:
            totals = {"messages": int(await conn.fetchval("SELECT COUNT(*) FROM messages"))}
            totals.update({s.value: 0 for s in ReceiptStatus})
            for r in await conn.fetch("SELECT status, COUNT(*) AS n FROM receipts GROUP BY status"):
                totals[r["status"]] = int(r["n"])
            totals["reports"] = int(await conn.fetchval("SELECT COUNT(*) FROM reports"))
            return totals

        result: dict[str, int] = await self._read(count_all, snapshot=True)
        return result

    async def mark_thread_delivered(self, thread_id: str, session_id: str) -> int:
        async def mark(tx: Tx) -> int:
            status = await tx.conn.execute(
                "UPDATE receipts SET status = 'delivered', delivered_at = $1 WHERE session_id = $2"
                " AND status = 'sent' AND message_seq IN (SELECT seq FROM messages WHERE thread_id = $3)",
                now(),
                session_id,
                thread_id,
            )
            if count(status):
                await tx.notify([RECEIPTS])
            return count(status)

        return await self._write(mark, idempotent=True)

    async def ack(self, session_id: str, message_ids: Sequence[str]) -> list[str]:
        ids = list(dict.fromkeys(message_ids))

        async def ack(tx: Tx) -> list[str]:
            seq_of = {
                r["id"]: r["seq"] for r in await tx.conn.fetch("SELECT id, seq FROM messages WHERE id = ANY($1)", ids)
            }
            unknown = [i for i in ids if i not in seq_of]
            if unknown:
                raise NotFound(
                    f"No message with id {', '.join(map(repr, unknown))}.",
                    "Pass message_id values from mail_inbox or mail_wait results.",
                )
            seqs = list(seq_of.values())
            mine = {
                r["message_seq"]
                for r in await tx.conn.fetch(
                    "SELECT message_seq FROM receipts WHERE session_id = $1 AND message_seq = ANY($2::bigint[])",
                    session_id,
                    seqs,
                )
            }
            foreign = [i for i in ids if seq_of[i] not in mine]
            if foreign:
                raise Forbidden(
                    f"Message {', '.join(map(repr, foreign))} was not sent to you.",
                    "You can only acknowledge mail addressed to you; nothing was acknowledged.",
                )
            await tx.conn.execute(
                "UPDATE receipts SET status = 'acked', acked_at = $1, delivered_at = COALESCE(delivered_at, $1)"
                " WHERE session_id = $2 AND status != 'acked' AND message_seq = ANY($3::bigint[])",
                now(),
                session_id,
                seqs,
            )
            await tx.notify([RECEIPTS])
            return ids

        return await self._write(ack, idempotent=True)

    # -- directives -----------------------------------------------------------
    async def active_directives(self, session_id: str) -> list[Directive]:
        result: list[Directive] = await self._read(lambda c: _directives(c, session_id))
        return result

    async def all_directives(self) -> list[Directive]:
        result: list[Directive] = await self._read(lambda c: _directives(c, None))
        return result

    async def add_directive(
        self, directive_id: str, text: str, target_id: str | None, priority: bool, created_by: str | None
    ) -> None:
        async def add(tx: Tx) -> None:
            await tx.conn.execute(
                "INSERT INTO directives (id, text, target_id, priority, created_by, created_at)"
                " VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (id) DO NOTHING",
                directive_id,
                text,
                target_id,
                int(priority),
                created_by,
                now(),
            )
            await tx.notify(["sessions"])

        await self._write(add, idempotent=True)

    async def clear_directives(self, directive_id: str | None) -> int:
        async def clear(tx: Tx) -> int:
            if directive_id is None:
                status = await tx.conn.execute("UPDATE directives SET cleared_at = $1 WHERE cleared_at IS NULL", now())
            else:
                status = await tx.conn.execute(
                    "UPDATE directives SET cleared_at = $1 WHERE id = $2 AND cleared_at IS NULL", now(), directive_id
                )
            await tx.notify(["sessions"])
            return count(status)

        cleared: int = await self._write(clear)
        return cleared
