"""Real processes where processes are the point: `maestro watch` in a pseudo-terminal, and Ctrl-C.

`maestro watch` runs on a pty (so rich draws the live view as in a terminal); the test waits for text to
appear on it, never for time to pass. Ctrl-C is a real SIGINT to a real process; afterwards the store
passes SQLite's integrity check and `maestro doctor`.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from human_support import ENV, maestro, poll_until

from maestro_mcp.store import ALL, create_store

pytestmark = pytest.mark.slow


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env.update(COLUMNS="120", LINES="50", TERM="xterm-256color", PYTHONUNBUFFERED="1", **extra)
    return env


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


class Terminal:
    """A process on a pseudo-terminal, and everything it has drawn so far."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
        self.proc = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=child_env(), close_fds=True
        )
        os.close(slave)
        self.master = master
        self.screen = ""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], max(timeout, 0))
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not data:
            return False
        self.screen += data.decode("utf-8", "replace")
        return True

    def wait_for(self, text: str, timeout: float = 30) -> None:
        """Read until `text` has been drawn; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left) or (self.proc.poll() is not None and text not in self.screen):
                if text in self.screen:
                    return
                raise AssertionError(f"{text!r} did not appear within {timeout} s; the terminal shows:\n{self.screen}")

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C, then drain the terminal until the process has exited."""
        self.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            if not self._read(0.2):
                break
        return self.proc.wait(timeout=max(deadline - time.monotonic(), 1))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.master)


@pytest.fixture
def terminal(initialised: Path) -> Iterator[Terminal]:
    term = Terminal([sys.executable, "-m", "maestro_mcp", "watch"], initialised.parent.parent)
    try:
        yield term
    finally:
        term.close()


def test_watch_draws_the_view_redraws_on_a_change_and_leaves_cleanly_on_ctrl_c(
    terminal: Terminal, initialised: Path
) -> None:
    terminal.wait_for("latest mail and events")
    terminal.wait_for("tasks 0/0 done")

    # Another process (this one) changes the store: the view picks it up without being asked.
    assert maestro("tasks", "import", str(Path(__file__).parents[2] / "examples" / "plans" / "todo-app.yaml")).code == 0
    terminal.wait_for("tasks 0/6 done")
    assert maestro("steer", "ship the storage layer first").code == 0
    terminal.wait_for("ship the storage layer first")

    code = terminal.interrupt()

    assert code == 0, terminal.screen
    assert "Traceback" not in terminal.screen
    assert "stopped watching (nothing was changed)" in terminal.screen
    assert integrity(initialised) == "ok"
    assert maestro("doctor").code == 0


def big_plan(path: Path, n: int) -> Path:
    tasks = [
        {"key": f"t{i}", "title": f"Task {i}", "depends_on": [f"t{i - 1}"] if i % 20 else [], "files": [f"f{i}.py"]}
        for i in range(n)
    ]
    path.write_text(json.dumps({"tasks": tasks}))
    return path


def test_ctrl_c_during_tasks_import_exits_cleanly_and_the_import_is_all_or_nothing(project: Path) -> None:
    """SIGINT as soon as the store exists (the command is past start-up and inside its transaction or
    about to be): whatever point it lands on, the exit is clean and the plan is imported whole or not at all."""
    plan = big_plan(project / "plan.json", 1500)
    db = project / ".maestro" / "maestro.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "maestro_mcp", "tasks", "import", str(plan)],
        cwd=project,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Nothing announces the file to this process, so it is polled for, with a bound.
        assert poll_until(lambda: db.exists() or proc.poll() is not None, timeout=30), "the store never appeared"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert "Traceback" not in out + err
    # 130 with our message when it lands in the command's work; 0 when it came too late to matter;
    # 1 with click's "Aborted!" when it lands while the result is being printed.
    assert proc.returncode in (0, 1, 130), (proc.returncode, out, err)
    if proc.returncode == 130:
        assert "interrupted" in err and "consistent" in err
    if proc.returncode == 1:
        assert "Aborted" in err
    assert integrity(db) == "ok"
    conn = sqlite3.connect(db)
    try:
        # Interrupted before its schema was made, the store holds no tables yet (the next command makes them).
        made = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'tasks'").fetchone() is not None
        count = conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] if made else 0
    finally:
        conn.close()
    assert count in (0, 1500), f"a half-imported plan: {count} tasks"
    doctor = maestro("doctor")
    assert "[  ok] integrity: ok" in doctor.out, doctor.out
    if count == 0:  # the store is usable: the same import, run again, goes through
        again = maestro("tasks", "import", str(plan))
        assert again.code == 0, again.output
        assert again.out.startswith("imported 1500 tasks")


def test_ctrl_c_during_the_demo_exits_cleanly_and_its_workers_end(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "maestro_mcp", "demo"],
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workspace: Path | None = None
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "spawn_worker -> worker-2" not in seen:
            ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
            assert ready, f"the demo did not spawn its workers within 60 s:\n{seen}"
            line = proc.stdout.readline()
            assert line, f"the demo ended early:\n{seen}"
            seen += line
            if workspace is None and " in /" in line:
                workspace = Path(line.rsplit(" in ", 1)[1].strip())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    try:
        assert proc.returncode == 130, (out, err)
        assert "Traceback" not in seen + out + err
        assert "interrupted" in err
        assert workspace is not None and workspace.name.startswith("maestro-demo-")
        db = workspace / ".maestro" / "maestro.db"
        assert integrity(db) == "ok"
        anyio.run(within, 30.0, db)  # TimeoutError: a demo worker is still live after Ctrl-C
    finally:
        if workspace is not None and workspace.name.startswith("maestro-demo-"):
            shutil.rmtree(workspace, ignore_errors=True)


async def every_session_ends(db: Path) -> None:
    """Return once every session of the store has ended, woken by the store's notifier (bound it)."""
    store = create_store(str(db))
    await store.open()
    try:
        async with anyio.create_task_group() as tg:
            await store.listen(ALL, tg)
            async with store.subscribe(ALL) as bell:
                while await store.list_sessions(live=True):
                    await bell.wait(1.0)  # the timeout is a safety net: a killed process says nothing
            tg.cancel_scope.cancel()
    finally:
        await store.close()


async def within(seconds: float, db: Path) -> None:
    with anyio.fail_after(seconds):
        await every_session_ends(db)
