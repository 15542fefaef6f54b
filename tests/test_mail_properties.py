"""Properties of the mailbox over random traffic: order, exactly-once delivery, honest counts."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maestro_mcp.models import Priority, Role

if TYPE_CHECKING:
    from harness import Team

pytestmark = pytest.mark.anyio

PRIORITIES = [p.value for p in Priority]
RANK = {p.value: p.rank for p in Priority}
URGENT = {"critical", "high"}

# Each example uses a fresh recipient on the shared store, so examples never see each other's mail.
_fresh = itertools.count()
_settings = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@_settings
@given(
    priorities=st.lists(st.sampled_from(PRIORITIES), min_size=1, max_size=25),
    pages=st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=30),
)
async def test_paged_inbox_returns_each_message_once_by_priority_then_age(
    team: Team, priorities: list[str], pages: list[int]
) -> None:
    n = next(_fresh)
    sender = await team.agent(f"sender{n}")
    reader = await team.agent(f"reader{n}", Role.worker, parent=f"sender{n}")
    sent = []
    for i, priority in enumerate(priorities):
        result = await sender.call("mail_send", to=reader.name, body=f"{i}", priority=priority)
        sent.append((RANK[priority], i, result["message_id"]))

    received: list[str] = []
    left = len(priorities)
    for limit in itertools.chain(pages, itertools.repeat(7)):
        if left == 0:
            break
        page = await reader.call("mail_inbox", limit=limit)
        got = [m["message_id"] for m in page["messages"]]
        assert len(got) == min(limit, left)
        left -= len(got)
        received += got
        assert page["remaining"] == left
        unread_priorities = [priorities[i] for _, i, mid in sorted(sent) if mid not in received]
        assert page["unread"] == {"count": left, "urgent": bool(URGENT & set(unread_priorities))}

    assert received == [mid for _, _, mid in sorted(sent)]
    assert (await reader.call("mail_inbox"))["messages"] == []
    assert all(status == "delivered" for mid in received for status in team.view.receipts(mid).values())


@_settings
@given(batches=st.lists(st.lists(st.sampled_from(PRIORITIES), min_size=1, max_size=6), min_size=1, max_size=5))
async def test_each_wait_returns_everything_waiting_in_priority_order(team: Team, batches: list[list[str]]) -> None:
    n = next(_fresh)
    sender = await team.agent(f"sender{n}")
    reader = await team.agent(f"reader{n}", Role.worker, parent=f"sender{n}")

    for batch in batches:
        for j, priority in enumerate(batch):
            await sender.call("mail_send", to="children", body=f"{j}", priority=priority)
        waited = await reader.call("mail_wait", timeout_s=0, max_messages=50)
        assert waited["timed_out"] is False
        expected = [str(j) for _, j in sorted((RANK[p], j) for j, p in enumerate(batch))]
        assert [m["body"] for m in waited["messages"]] == expected
        assert [m["priority"] for m in waited["messages"]] == sorted(batch, key=RANK.__getitem__)
        assert waited["unread"] == {"count": 0, "urgent": False}
