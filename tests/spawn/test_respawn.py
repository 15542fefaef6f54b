"""respawn_worker with real processes: an ended worker comes back as the same session, with its mailbox and
its tasks; what is refused says why. (Real CLIs resuming their conversation: tests/cli/test_observe_real_clis.py.)"""

from __future__ import annotations

import anyio
import pytest
from spawnkit import Crew, Watch

from maestro_mcp.client import ToolCallError
from maestro_mcp.models import TaskStatus

pytestmark = pytest.mark.anyio


async def test_a_crashed_script_worker_comes_back_as_itself_with_its_task_and_the_mail_it_missed(
    crew: Crew, watch: Watch
) -> None:
    created = await crew.boss.call("task_create", tasks=[{"key": "a", "title": "Hold me"}])
    task_id = created["tasks"][0]["id"]
    spawned = await crew.boss.call(
        "spawn_worker", agent=crew.project.agent("probe.py"), name="w1", directive="claim", task_ids=[task_id]
    )
    assert (await watch.report_with("w1", "holding"))["holding"] == task_id
    await watch.tell("w1", "exit", "3")  # it crashes, holding its task
    ended = await watch.ended("w1")
    assert (ended.status.value, ended.exit_code) == ("failed", 3)
    released = await crew.services.store.get_task(task_id)
    assert released is not None and (released.status, released.assignee_id) == (TaskStatus.ready, None)
    await crew.boss.call("mail_send", to="w1", subject="while you were down", body="MISSED-1", priority="critical")

    again = await crew.boss.call("respawn_worker", session_id="w1", directive="the schema changed")

    assert (again["session_id"], again["name"]) == (spawned["session_id"], "w1")
    missed = await watch.report_with("w1", "mail")
    assert missed["mail"]["body"] == "MISSED-1", "the mail sent while it was down was waiting for it"
    me = missed["whoami"]
    assert (me["session_id"], me["name"]) == (spawned["session_id"], "w1")
    reports = [r for r in await watch.reports("w1") if "holding" in r]
    assert [r["holding"] for r in reports] == [task_id, task_id], "it took back the task it held"
    manifest = await anyio.Path(crew.project.root, ".maestro", "manifests", "w1.md").read_text()
    assert "restarted by boss after you failed, exit code 3" in manifest
    assert "could not be resumed" in manifest and "the schema changed" in manifest
    assert {s.name for s in await crew.services.store.list_sessions()} >= {"w1"}
    assert len([s for s in await crew.services.store.list_sessions() if s.name == "w1"]) == 1


async def test_respawn_refuses_a_live_worker_an_unknown_one_and_a_worker_that_is_not_yours(
    crew: Crew, watch: Watch
) -> None:
    await crew.boss.call("spawn_worker", agent=crew.project.agent("probe.py"), name="w1", directive="")
    await watch.report_with("w1", "whoami")
    with pytest.raises(ToolCallError) as live:
        await crew.boss.call("respawn_worker", session_id="w1")
    assert "w1 is live" in live.value.text and "stop_worker it first" in live.value.text
    with pytest.raises(ToolCallError) as unknown:
        await crew.boss.call("respawn_worker", session_id="nobody")
    assert "nobody" in unknown.value.text
    with pytest.raises(ToolCallError) as budget:
        await crew.boss.call("respawn_worker", session_id="w1", budget_usd=0)
    assert "budget_usd=0" in budget.value.text and "above zero" in budget.value.text
    with pytest.raises(ToolCallError) as spawn_budget:
        await crew.boss.call("spawn_worker", agent="script", directive="x", budget_usd=-1)
    assert "above zero" in spawn_budget.value.text
    await watch.tell("w1", "exit", "0")
    await watch.ended("w1")
    other = await crew.team.agent("other-lead", workers=crew.workers)
    assert "w1 is not your worker" in await other.error("respawn_worker", session_id="w1")
