"""Store contract: directives, project-wide views, and whole-store snapshots (dump / restore)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from store_builders import new_message, task
from storekit import Maker, StoreKit, open_kit, pg_base_url

from maestro_mcp.errors import Conflict, InvalidArgument
from maestro_mcp.ids import new_id
from maestro_mcp.models import ReceiptStatus, ReportKind, ReportRecord, Role, SessionStatus, TaskStatus, now
from maestro_mcp.store import Store

pytestmark = pytest.mark.anyio


async def populate(store: Store, make_session: Maker) -> None:
    """A little of everything: a team, a conversation, a DAG with a claim, a report, a directive."""
    boss = await make_session("boss", Role.coordinator)
    worker = await make_session("worker", Role.worker, boss)
    question = new_message(boss, [worker], "start?")
    await store.insert_message(question)
    await store.insert_message(new_message(worker, [boss], "yes", thread_id=question.id, reply_to=question.id))
    await store.take_unread(worker.id, 10)
    a = task("a", files=["src/a.py"], created_by=boss.id)
    await store.create_tasks([a, task("b", depends_on=[a])])
    await store.claim_task(worker.id, 1)
    await store.add_report(
        ReportRecord(
            id=new_id("r"),
            session_id=worker.id,
            task_id=a.id,
            kind=ReportKind.progress,
            summary="half way",
            artifacts=["notes.md"],
            percent=50.0,
            created_at=now(),
        ),
        SessionStatus.working,
    )
    await store.add_directive(new_id("d"), "keep it small", None, True, boss.id)


async def test_directives_are_active_until_cleared(store: Store, make_session: Maker) -> None:
    boss, worker = await make_session("boss", Role.coordinator), await make_session("worker")
    everyone, targeted = new_id("d"), new_id("d")
    await store.add_directive(everyone, "tests first", None, False, boss.id)
    await store.add_directive(targeted, "stop editing docs", worker.id, True, boss.id)

    assert [d.text for d in await store.active_directives(worker.id)] == ["tests first", "stop editing docs"]
    assert [d.text for d in await store.active_directives(boss.id)] == ["tests first"]
    assert [(d.to, d.priority) for d in await store.all_directives()] == [(None, False), ("worker", True)]

    assert await store.clear_directives(targeted) == 1
    assert await store.clear_directives(targeted) == 0
    assert [d.directive_id for d in await store.all_directives()] == [everyone]
    assert await store.clear_directives(None) == 1
    assert await store.all_directives() == []


async def test_recent_messages_and_counts_summarise_the_project(store: Store, make_session: Maker) -> None:
    alice, bob, carol = await make_session("alice"), await make_session("bob"), await make_session("carol")
    first = new_message(alice, [bob, carol], "one")
    await store.insert_message(first)
    await store.insert_message(new_message(bob, [alice], "two"))
    await store.take_unread(bob.id, 10)
    await store.ack(carol.id, [first.id])

    recent = await store.recent_messages(10)

    assert [m.body for m in recent] == ["two", "one"]
    assert {r.name: r.status for r in recent[1].receipts} == {
        "bob": ReceiptStatus.delivered,
        "carol": ReceiptStatus.acked,
    }
    assert [m.body for m in await store.recent_messages(1)] == ["two"]
    assert await store.counts() == {"messages": 2, "sent": 1, "delivered": 1, "acked": 1, "reports": 0}


async def test_a_dump_restored_into_an_empty_store_dumps_the_same(
    kit: StoreKit, store: Store, make_session: Maker, tmp_path: Path
) -> None:
    await populate(store, make_session)
    dumped = await store.dump()

    async with open_kit(kit.backend, tmp_path / "copy", pg_base_url()) as copy:
        target = await copy.open()
        assert await target.is_empty()
        await target.restore(dumped, replace=False)

        assert await target.dump() == dumped
        assert not await target.is_empty()
        # New rows are numbered after the restored ones.
        boss, worker = await target.get_session("boss"), await target.get_session("worker")
        assert boss is not None and worker is not None
        await target.insert_message(new_message(boss, [worker], "after restore"))
        assert (await target.recent_messages(1))[0].body == "after restore"


async def test_restore_into_a_store_with_data_needs_replace(store: Store, make_session: Maker) -> None:
    await populate(store, make_session)
    dumped = await store.dump()

    with pytest.raises(Conflict, match="not empty"):
        await store.restore(dumped, replace=False)

    emptied: dict[str, list[dict[str, Any]]] = {table: [] for table in dumped}
    await store.restore(emptied, replace=True)
    assert await store.is_empty()
    await store.restore(dumped, replace=True)
    assert await store.dump() == dumped


async def test_a_dump_is_portable_lists_as_json_text_and_flags_as_integers(store: Store, make_session: Maker) -> None:
    await populate(store, make_session)

    dumped = await store.dump()

    a = next(r for r in dumped["tasks"] if r["title"] == "a")
    assert a["files"] == '["src/a.py"]' and a["blocked_on_deps"] == 0
    assert dumped["reports"][0]["artifacts"] == '["notes.md"]'
    assert [r["status"] for r in dumped["tasks"]] == [TaskStatus.in_progress.value, TaskStatus.pending.value]
    assert {len(dumped[t]) for t in ("sessions", "messages", "directives", "task_deps", "reports")} == {1, 2}


async def test_restore_refuses_unknown_columns_and_changes_nothing(store: Store, make_session: Maker) -> None:
    await populate(store, make_session)
    before = await store.dump()
    bad = {**before, "sessions": [{**before["sessions"][0], "colour": "red"}]}

    with pytest.raises(InvalidArgument, match="colour"):
        await store.restore(bad, replace=True)

    assert await store.dump() == before


async def test_restore_refuses_references_to_missing_rows_and_changes_nothing(
    store: Store, make_session: Maker
) -> None:
    await populate(store, make_session)
    before = await store.dump()
    dangling = {**before, "sessions": [r for r in before["sessions"] if r["name"] != "worker"]}

    with pytest.raises(InvalidArgument, match="does not contain"):
        await store.restore(dangling, replace=True)

    assert await store.dump() == before
