"""`maestro stop NAME` of an agent started by `maestro launch`: the agent and everything it started stop,
and "stopped" is said only once they are gone.

A launched agent runs in the user's terminal, so it does not lead a process group of its own; its
session used to record only its `maestro serve`, and `stop` said "stopped" while the CLI ran on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from projectkit import user_env

from maestro_mcp.launch.spawner import pid_alive, process_tree
from maestro_mcp.models import SessionStatus
from maestro_mcp.store import create_store

pytestmark = pytest.mark.anyio

PROBE = Path(__file__).resolve().parents[1] / "spawn" / "agents" / "probe.py"
RUN_S = 60


def env_for(project: Path) -> dict[str, str]:
    return user_env(project / ".maestro" / "maestro.db")


async def test_stop_ends_a_launched_agent_and_everything_it_started(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".maestro").mkdir(parents=True)
    env = env_for(project)
    launch = await anyio.open_process(
        [sys.executable, "-m", "maestro_mcp", "launch", f"script:{PROBE}", "--headless", "--name", "boss2",
         "--directive", "ignore-stop"],
        cwd=project, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    store = create_store(env["MAESTRO_DB"])
    await store.open()
    try:
        with anyio.fail_after(RUN_S):
            async with store.subscribe("sessions") as bell:
                while True:  # the probe reports once it has talked to its own server
                    session = await store.get_session("boss2")
                    if session is not None and await store.reports(session_id=session.id):
                        break
                    await bell.wait(1)
        agent_pid = session.pid
        assert agent_pid is not None and agent_pid != launch.pid
        tree = process_tree(agent_pid)
        assert len(tree) >= 2, "the agent and the maestro serve it started"

        with anyio.fail_after(RUN_S):
            done = await anyio.run_process(
                [sys.executable, "-m", "maestro_mcp", "stop", "boss2", "--grace", "1"], cwd=project, env=env,
                check=False,
            )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout.decode().strip() == "boss2 is stopped"
        assert [pid for pid in tree if pid_alive(pid)] == [], "stopped means gone"
        with anyio.fail_after(RUN_S):
            await launch.wait()
        record = await store.get_session("boss2")
        assert record is not None and not record.live and record.status is SessionStatus.stopped
    finally:
        if launch.returncode is None:
            launch.kill()
            await launch.wait()
        await store.close()
