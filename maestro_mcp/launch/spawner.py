"""The one place that starts agent processes: writes a plan's files and runs its argv, then watches.

Each child gets its own process group (so stopping it also stops the MCP
servers it started), /dev/null as stdin (headless CLIs otherwise wait on it)
and a log file under `.maestro/logs/`. When a child exits, `on_exit` hears its
exit code at once: no polling.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.abc

from maestro_mcp.errors import NotFound
from maestro_mcp.launch.plan import FileWrite, LaunchPlan

OnExit = Callable[[str, int], Awaitable[None]]
KILL_WAIT_S = 5.0


def write_files(files: list[FileWrite]) -> None:
    for f in files:
        path = Path(f.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        content = f.content
        if f.merge_json and path.exists():
            try:
                existing = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                existing = {}
            if isinstance(existing, dict):
                ours = json.loads(f.content)
                for key, value in ours.items():
                    if isinstance(value, dict) and isinstance(existing.get(key), dict):
                        existing[key] = {**existing[key], **value}
                    else:
                        existing[key] = value
                content = json.dumps(existing, indent=2) + "\n"
        path.write_text(content, encoding="utf-8")
        if path.suffix == ".json" or path.suffix == ".md":
            path.chmod(0o600)


def resolve_binary(argv0: str, env: dict[str, str], install_hint: str) -> str:
    if os.sep in argv0:
        if os.access(argv0, os.X_OK):
            return argv0
        raise NotFound(f"{argv0} is not an executable file.")
    found = shutil.which(argv0, path=env.get("PATH"))
    if found is None:
        hint = f"Install it with `{install_hint}`." if install_hint else "Install it or fix PATH."
        raise NotFound(f"The agent CLI `{argv0}` is not on PATH.", hint)
    return found


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0): look at its state where /proc exists.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


async def wait_pid(pid: int) -> None:
    """Wait for any process (not only our child) to exit, through a pidfd: no polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        await anyio.wait_readable(fd)
    finally:
        os.close(fd)


def signal_group(pid: int, sig: signal.Signals) -> bool:
    """Signal the process group a spawned child leads; False when it is already gone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return True


class Spawner:
    """Starts and watches the children of one server process."""

    def __init__(self, task_group: anyio.abc.TaskGroup, on_exit: OnExit) -> None:
        self.task_group = task_group
        self.on_exit = on_exit
        self._children: dict[str, anyio.abc.Process] = {}

    def watching(self, session_id: str) -> bool:
        return session_id in self._children

    async def start(self, session_id: str, plan: LaunchPlan, install_hint: str = "") -> int:
        binary = resolve_binary(plan.argv[0], plan.env, install_hint)
        write_files(plan.files)
        log_path = Path(plan.log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:  # noqa: ASYNC230 - opening a local log file does not block
            process = await anyio.open_process(
                [binary, *plan.argv[1:]],
                env=plan.env,
                cwd=plan.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[session_id] = process
        self.task_group.start_soon(self._watch, session_id, process)
        return process.pid

    async def _watch(self, session_id: str, process: anyio.abc.Process) -> None:
        code = await process.wait()
        self._children.pop(session_id, None)
        with anyio.CancelScope(shield=True):
            await self.on_exit(session_id, code)

    async def terminate(self, session_id: str, pid: int, grace_s: float) -> None:
        """SIGTERM the child's group, then SIGKILL after `grace_s` if it is still there; return once it is gone."""
        if not signal_group(pid, signal.SIGTERM):
            return
        if await self._gone(session_id, pid, grace_s):
            return
        signal_group(pid, signal.SIGKILL)
        # SIGKILL cannot be refused, but it takes effect asynchronously: report a stop only once it has.
        await self._gone(session_id, pid, KILL_WAIT_S)

    async def _gone(self, session_id: str, pid: int, within_s: float) -> bool:
        process = self._children.get(session_id)
        with anyio.move_on_after(within_s):
            if process is not None:
                await process.wait()
            else:
                await wait_pid(pid)  # a child of an earlier server process
            return True
        return False

    async def kill_all(self) -> None:
        for process in list(self._children.values()):
            signal_group(process.pid, signal.SIGKILL)
