"""`maestro run` as a user runs it from a script or CI: a real process, real script workers, exit codes.

The plan has 10 tasks in 3 waves; each test drives `python -m maestro_mcp run` to its end (bounded) and
reads the outcome from its exit code and output, then checks the store independently.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from harness import StoreView
from projectkit import user_env
from storekit import drop_schema, pg_base_url, with_params

from maestro_mcp.service import Services
from maestro_mcp.store import Store, create_store

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RUN_S = 180
AGENT = Path(__file__).parent / "agents" / "picky.py"
PLAN = """\
tasks:
  - {key: a1, title: "Schema for {{ params.app }}", files: [src/a1.py]}
  - {key: a2, title: A2, files: [src/a2.py]}
  - {key: a3, title: A3, files: [src/a3.py]}
  - {key: b1, title: B1, depends_on: [a1], description: "after {{ state.task.a1.result }}"}
  - {key: b2, title: B2, depends_on: [a1, a2]}
  - {key: b3, title: B3, depends_on: [a3]}
  - {key: b4, title: B4, depends_on: [a2]}
  - {key: c1, title: C1, depends_on: [b1, b2]}
  - {key: c2, title: C2, depends_on: [b3]}
  - {key: c3, title: C3, depends_on: [b4]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "plan.yaml").write_text(PLAN)
    shutil.copy(AGENT, root / "picky.py")
    return root


async def maestro_run(project: Path, *args: str, db: str | None = None) -> tuple[int, str]:
    env = user_env(db)
    with anyio.fail_after(RUN_S):
        done = await anyio.run_process(
            [sys.executable, "-m", "maestro_mcp", "run", *args], cwd=str(project), env=env, check=False
        )
    return done.returncode, done.stdout.decode() + done.stderr.decode()


def view(project: Path) -> StoreView:
    return StoreView(str(project / ".maestro" / "maestro.db"))


def statuses(project: Path) -> dict[str, str]:
    return {str(key): str(status) for key, status in view(project).rows("SELECT key, status FROM tasks")}


def outputs(project: Path) -> list[str]:
    """What the workers wrote: one out-KEY.txt per task they did."""
    return sorted(p.name for p in project.glob("out-*.txt"))


def the_run(project: Path) -> dict[str, Any]:
    (value,) = [v for (v,) in view(project).rows("SELECT value FROM state WHERE key LIKE 'run.%'")]
    return dict(json.loads(value))


RUN = ("plan.yaml", "--agent", "script:picky.py", "--workers", "3", "--param", "app=todo", "--sync")


async def test_a_ten_task_three_wave_plan_runs_to_the_end_and_exits_0(project: Path) -> None:
    code, out = await maestro_run(project, *RUN)

    assert code == 0, out
    assert "all 10 tasks done" in out
    assert set(statuses(project).values()) == {"done"}
    # {{ params.app }} was filled in at import, {{ state.task.a1.result }} when b1 was handed out.
    assert (project / "out-b1.txt").read_text() == "after did a1"
    (title,) = view(project).rows("SELECT title FROM tasks WHERE key = 'a1'")[0]
    workers = view(project).count("sessions WHERE role = 'worker'")
    scheduler = view(project).rows("SELECT agent, ended_at IS NULL FROM sessions WHERE role = 'coordinator'")
    assert title == "Schema for todo"
    assert workers == 3  # kept busy, not one process per task
    assert scheduler == [("maestro", 0)]


async def test_an_always_failing_task_exits_non_zero_naming_it_and_resume_finishes_after_the_fix(
    project: Path,
) -> None:
    (project / "fail-keys.txt").write_text("b2\n")

    code, out = await maestro_run(project, *RUN)

    assert code == 1, out
    assert "b2 (B2) failed: it broke: exit 2" in out
    assert "c1 (C1) blocked (a dependency failed)" in out
    after_failure = statuses(project)
    assert after_failure["b2"] == "failed" and after_failure["c1"] == "blocked"
    assert {k for k, s in after_failure.items() if s == "done"} == {"a1", "a2", "a3", "b1", "b3", "b4", "c2", "c3"}

    (project / "fail-keys.txt").write_text("")
    code, out = await maestro_run(project, *RUN, "--resume")

    assert code == 0, out
    assert set(statuses(project).values()) == {"done"}
    run = the_run(project)
    assert run["status"] == "done" and len(run["task_ids"]) == 10  # the same run, continued


async def test_bad_plans_and_options_are_refused_before_anything_starts(project: Path) -> None:
    (project / "bad.yaml").write_text(
        "tasks:\n"
        "  - {key: a, title: A, depends_on: [b]}\n"
        "  - {key: b, title: 'B for {{ params.who }}', depends_on: [a]}\n"
        "  - {key: c, title: C, agent: nosuch}\n"
        "  - {key: d, title: D, files: [../outside.py]}\n"
        "  - {key: e, title: 'E {{ state.nothing }}'}\n"
    )

    code, out = await maestro_run(project, "bad.yaml", "--agent", "script")
    zero, zero_out = await maestro_run(project, "plan.yaml", "--workers", "0")
    negative, negative_out = await maestro_run(project, "plan.yaml", "--timeout", "-5")

    assert code == 2
    assert "bad.yaml:2: these tasks depend on each other in a cycle: a -> b -> a" in out
    assert "bad.yaml:3: unknown variable {{ params.who }} (pass it with --param KEY=VALUE)" in out
    assert "bad.yaml:4: unknown agent kind 'nosuch'" in out
    assert "bad.yaml:5: files: '../outside.py' points outside the project" in out
    assert "bad.yaml:6: unknown variable {{ state.nothing }}" in out
    assert zero == 2 and "--workers 0" in zero_out
    assert negative == 2 and "--timeout -5" in negative_out
    assert not (project / ".maestro" / "maestro.db").exists() or statuses(project) == {}


async def test_a_run_whose_workers_all_crash_stops_with_a_summary_instead_of_respawning_forever(
    project: Path,
) -> None:
    (project / "crash-keys.txt").write_text("a1 a2 a3\n")

    code, out = await maestro_run(project, *RUN, "--max-crashes", "4")

    assert code == 1, out
    # Crashes are counted as their ends are seen: two may land in the same look.
    assert re.search(r"workers crashed [56] times \(the limit is 4\): giving up", out), out
    spawned = view(project).count("sessions WHERE role = 'worker'")
    assert spawned <= 6 + 3  # the crashes it counted, plus at most one spawn in flight per slot
    assert view(project).count("sessions WHERE ended_at IS NULL AND role != 'operator'") == 0


async def test_async_returns_a_run_id_that_status_and_wait_follow_to_the_end(project: Path) -> None:
    code, out = await maestro_run(project, *RUN[:-1], "--async")
    assert code == 0, out
    run_id = out.strip().splitlines()[-1]
    assert run_id.startswith("run-")

    waited, wait_out = await maestro_run(project, "wait", run_id)
    status, status_out = await maestro_run(project, "status", run_id)

    assert waited == 0, wait_out
    assert "all 10 tasks done" in wait_out
    assert status == 0 and f"run {run_id} (plan.yaml): done" in status_out and "10/10 done" in status_out


@contextlib.asynccontextmanager
async def run_hanging_on_b3(project: Path) -> AsyncIterator[tuple[anyio.abc.Process, Store]]:
    """`maestro run` whose worker hangs on task b3, once it does; and the project's store, made before the
    run so that the test can wait on it. Any worker still live at the end is killed: none is left behind."""
    (project / "hang-keys.txt").write_text("b3\n")
    env = user_env()
    store = create_store(str(project / ".maestro" / "maestro.db"))
    await store.open()
    try:
        with anyio.fail_after(RUN_S):
            async with await anyio.open_process(
                [sys.executable, "-m", "maestro_mcp", "run", *RUN], cwd=str(project), env=env
            ) as proc:
                async with anyio.create_task_group() as tg:
                    await store.listen("test", tg)
                    await Services.create(store).state.require("hanging.b3", wait_s=RUN_S / 2)
                    tg.cancel_scope.cancel()
                yield proc, store
    finally:
        await store.close()
        for (pid,) in view(project).rows("SELECT pid FROM sessions WHERE ended_at IS NULL AND pid IS NOT NULL"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def test_ctrl_c_stops_the_workers_and_leaves_the_run_resumable(project: Path) -> None:
    async with run_hanging_on_b3(project) as (proc, _):
        proc.send_signal(signal.SIGINT)  # as Ctrl-C sends it
        code = await proc.wait()
        assert proc.stdout is not None
        out = (await proc.stdout.receive()).decode()

    assert code == 130, out
    after = statuses(project)
    assert after["b3"] == "ready"  # given back by its stopped worker, not lost nor failed
    assert view(project).count("sessions WHERE ended_at IS NULL AND role != 'operator'") == 0
    assert the_run(project)["status"] == "stopped"

    (project / "hang-keys.txt").write_text("")
    code, out = await maestro_run(project, *RUN, "--resume")
    assert code == 0, out
    assert set(statuses(project).values()) == {"done"}


async def test_a_run_killed_outright_is_noticed_its_workers_told_and_its_task_freed(project: Path) -> None:
    """SIGKILL (a CI job cancelled): nothing of the run says goodbye, yet its scheduler session does not
    stay live for good; its hanging worker hears its coordinator is gone, stops, and gives its task back."""
    async with run_hanging_on_b3(project) as (proc, store):
        proc.kill()
        await proc.wait()
        with anyio.fail_after(20):  # a sweep every 2 s, then the worker's stop and end
            async with anyio.create_task_group() as tg, store.subscribe("sessions") as bell:
                await store.listen("test", tg)
                while view(project).count("sessions WHERE ended_at IS NULL AND role != 'operator'") > 0:
                    await bell.wait(2)
                tg.cancel_scope.cancel()

    assert statuses(project)["b3"] == "ready"
    ended = dict(view(project).rows("SELECT role, status FROM sessions WHERE agent = 'maestro'"))
    assert ended == {"coordinator": "exited"}


async def test_a_crashed_worker_is_respawned_as_the_same_session_and_the_run_still_finishes(project: Path) -> None:
    (project / "crash-once-keys.txt").write_text("b2\n")

    code, out = await maestro_run(project, *RUN)

    assert code == 0, out
    assert "all 10 tasks done" in out
    restarts = view(project).rows("SELECT st.restarts FROM session_stats st WHERE st.restarts > 0")
    assert restarts == [(1,)]  # the worker that crashed on b2 came back, as the same session
    assert view(project).rows("SELECT status FROM tasks WHERE key = 'b2'") == [("done",)]
    assert view(project).count("sessions WHERE role = 'worker'") == 3


async def test_the_same_run_on_a_postgresql_store_exits_0(project: Path) -> None:
    schema = f"run_{secrets.token_hex(4)}"
    url = with_params(pg_base_url(), schema=schema)
    try:
        code, out = await maestro_run(project, *RUN, db=url)
        assert code == 0, out
        assert "all 10 tasks done" in out
        store = create_store(url)
        await store.open()
        try:
            assert {t.status.value for t in await store.list_tasks()} == {"done"}
            got = await Services.create(store).state.require("task.b1.result")
        finally:
            await store.close()
        assert json.loads(got.value) == "did b1"
    finally:
        await drop_schema(pg_base_url(), schema)


async def test_resume_from_a_task_runs_it_and_its_dependents_again_and_nothing_else(project: Path) -> None:
    code, out = await maestro_run(project, *RUN)
    assert code == 0, out
    for output in outputs(project):
        (project / output).unlink()

    code, out = await maestro_run(project, *RUN, "--resume-from", "b1")

    assert code == 0, out
    assert set(statuses(project).values()) == {"done"}
    assert outputs(project) == ["out-b1.txt", "out-c1.txt"]  # c1 depends on b1; nothing else ran
    missing, missing_out = await maestro_run(project, *RUN, "--resume-from", "zz")
    assert missing == 1 and "The run has no task 'zz'" in missing_out


async def test_a_task_that_names_its_own_model_gets_a_worker_of_its_own_kind(project: Path) -> None:
    (project / "plan.yaml").write_text(PLAN.replace("depends_on: [b4]}", "depends_on: [b4], model: big-model}"))

    code, out = await maestro_run(project, *RUN)

    assert code == 0, out
    assert set(statuses(project).values()) == {"done"}
    did = view(project).rows("SELECT s.name, t.key FROM tasks t JOIN sessions s ON s.id = t.assignee_id ORDER BY t.key")
    (c3_worker,) = [name for name, key in did if key == "c3"]
    assert [key for name, key in did if name == c3_worker] == ["c3"]  # nothing else went to that kind
    launch = view(project).rows(
        "SELECT st.launch FROM session_stats st JOIN sessions s ON s.id = st.session_id WHERE s.name = ?", c3_worker
    )
    assert json.loads(launch[0][0]).get("model") == "big-model"
