"""`maestro demo`, run the way a newcomer runs it, and its summary checked against the store it names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from human_support import ENV, opened

from maestro_mcp.models import ReceiptStatus, Role, SessionStatus, TaskStatus

pytestmark = pytest.mark.slow

DEMO_TIMEOUT_S = 90


@dataclass
class DemoRun:
    code: int
    out: str
    err: str
    summary: dict[str, str]

    @property
    def workspace(self) -> Path:
        return Path(self.summary["workspace"])

    @property
    def store(self) -> Path:
        return Path(self.summary["store"])


def parse_summary(out: str) -> dict[str, str]:
    """The `key: value` lines after the line `summary`."""
    assert "\nsummary\n" in out, f"no summary in the demo's output:\n{out}"
    tail = out.split("\nsummary\n", 1)[1]
    return {m[1]: m[2].strip() for m in re.finditer(r"^  ([a-z ]+):\s+(.*)$", tail, re.MULTILINE)}


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoRun]:
    """One run of the demo for the whole module (it takes ~15 s); its scratch project is removed afterwards."""
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    proc = subprocess.run(
        [sys.executable, "-m", "maestro_mcp", "demo"],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    run = DemoRun(proc.returncode, proc.stdout, proc.stderr, {})
    if "\nsummary\n" in proc.stdout:
        run.summary = parse_summary(proc.stdout)
    try:
        yield run
    finally:
        if "workspace" in run.summary and Path(run.summary["workspace"]).name.startswith("maestro-demo-"):
            shutil.rmtree(run.summary["workspace"], ignore_errors=True)


def test_demo_exits_0_without_a_traceback_and_prints_a_summary(demo: DemoRun) -> None:
    assert demo.code == 0, f"stdout:\n{demo.out}\nstderr:\n{demo.err}"
    assert "Traceback" not in demo.out + demo.err
    for key in ("tasks", "messages", "workers", "files", "wall time", "workspace", "store"):
        assert key in demo.summary, f"the summary has no {key!r} line:\n{demo.out}"
    assert demo.workspace.is_dir()
    assert demo.store.is_file()
    assert demo.store.is_relative_to(demo.workspace)


def test_demo_summary_matches_the_store_it_names(demo: DemoRun) -> None:
    assert demo.code == 0, demo.err
    tasks = re.fullmatch(r"(\d+)/(\d+) done", demo.summary["tasks"])
    messages = re.match(r"(\d+) \(receipts: (\d+) unread, (\d+) delivered, (\d+) acked\)", demo.summary["messages"])
    workers = re.match(r"(\d+) spawned, (\d+) crashed \((.*)\)", demo.summary["workers"])
    assert tasks and messages and workers, demo.summary

    async def read() -> None:
        async with opened(demo.store) as svc:
            stored_tasks = await svc.store.list_tasks()
            counts = await svc.store.counts()
            sessions = await svc.store.list_sessions(role=Role.worker)
        assert (int(tasks[1]), int(tasks[2])) == (8, 8)
        assert len(stored_tasks) == 8
        assert all(t.status is TaskStatus.done for t in stored_tasks)
        assert int(messages[1]) == counts["messages"]
        assert int(messages[2]) == counts[ReceiptStatus.sent.value]
        assert int(messages[3]) == counts[ReceiptStatus.delivered.value]
        assert int(messages[4]) == counts[ReceiptStatus.acked.value]
        assert int(workers[1]) == len(sessions)
        assert not any(s.live for s in sessions), "a worker is still marked live after the demo"

    anyio.run(read)


def test_demo_crashed_worker_failed_with_code_3_and_its_task_was_finished_by_another(demo: DemoRun) -> None:
    assert demo.code == 0, demo.err
    workers = re.match(r"(\d+) spawned, (\d+) crashed \((.*)\)", demo.summary["workers"])
    assert workers is not None and workers[2] == "1", demo.summary["workers"]
    crashed_name = workers[3]

    async def read() -> None:
        async with opened(demo.store) as svc:
            crashed = await svc.store.get_session(crashed_name)
            assert crashed is not None, f"the summary names {crashed_name!r}, which is not in the store"
            assert crashed.status is SessionStatus.failed
            assert crashed.exit_code == 3
            retried = [t for t in await svc.store.list_tasks() if t.attempts >= 2]
            assert retried, "no task was handed out a second time after the crash"
            names = {s.id: s.name for s in await svc.store.list_sessions()}
            for task in retried:
                assert task.status is TaskStatus.done
                assert task.assignee_id is not None and task.assignee_id != crashed.id
                assert names[task.assignee_id] != crashed_name
            # The coordinator heard of the crash as an event naming the released task.
            events = [m for m in await svc.store.recent_messages(200) if m.type.value == "event"]
            crash_events = [m for m in events if m.sender == crashed_name and "exit code 3" in m.subject]
            assert crash_events
            assert any(t.id in crash_events[0].body for t in retried)

    anyio.run(read)


def test_demo_files_listed_in_the_summary_exist_in_the_workspace(demo: DemoRun) -> None:
    assert demo.code == 0, demo.err
    files = re.match(r"(\d+) written: (.*)", demo.summary["files"])
    assert files is not None, demo.summary["files"]
    names = [f.strip() for f in files[2].split(",")]
    assert len(names) == int(files[1]) == 8
    for name in names:
        path = demo.workspace / name
        assert path.is_file(), f"{name} is in the summary but not in {demo.workspace}"
        assert path.stat().st_size > 0

    async def declared() -> set[str]:
        async with opened(demo.store) as svc:
            return {f for t in await svc.store.list_tasks() for f in t.files}

    assert set(names) == anyio.run(declared)


def test_status_json_of_the_demo_store_agrees_with_the_summary(demo: DemoRun) -> None:
    assert demo.code == 0, demo.err
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env["MAESTRO_DB"] = str(demo.store)
    proc = subprocess.run(
        [sys.executable, "-m", "maestro_mcp", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    import json

    status = json.loads(proc.stdout)
    assert sum(t["status"] == "done" for t in status["tasks"]) == 8
    assert str(status["counts"]["messages"]) == demo.summary["messages"].split()[0]
    crashed = [s for s in status["sessions"] if s["exit_code"] == 3]
    assert [s["status"] for s in crashed] == ["failed"]


def test_the_command_the_demo_prints_works_in_a_shell_without_the_venv_on_path(demo: DemoRun) -> None:
    """After `make demo`, `maestro` is in .venv/bin, not on PATH: the printed command must still work."""
    assert demo.code == 0, demo.err
    command = demo.summary["look at it"]
    workspace, shown = command.split(" && ", 1)
    assert workspace == f"cd {demo.summary['workspace']}"
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env["PATH"] = "/usr/bin:/bin"
    proc = subprocess.run(
        ["/bin/sh", "-c", f"{workspace} && {shown}"], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "plan by wave" in proc.stdout
