"""The one place that starts agent processes: writes a plan's files and runs its argv, then watches.

Each child gets its own process group (so stopping it also stops the MCP
servers it started), /dev/null as stdin (headless CLIs otherwise wait on it)
and a log file under `.maestro/logs/`. When a child exits, `on_exit` hears its
exit code at once: no polling.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.abc

from maestro_mcp.adapters.base import FileWrite, LaunchPlan
from maestro_mcp.adapters.settings import merge_settings
from maestro_mcp.errors import InvalidArgument, NotFound

OnExit = Callable[[str, int], Awaitable[None]]
KILL_WAIT_S = 5.0


def _confined(path: Path, root: Path) -> Path:
    """`path` inside `root`, through real directories only: maestro never writes through a symbolic link
    (a link planted under .maestro/ would otherwise let an agent overwrite any file the user can)."""
    base = Path(os.path.abspath(root))
    target = Path(os.path.abspath(path))
    if not target.is_relative_to(base):
        raise InvalidArgument(f"{path} is outside the project {root}: maestro writes only inside it.")
    current = base
    for part in target.relative_to(base).parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise InvalidArgument(
                f"{current} is a symbolic link: maestro does not write through links.",
                "Remove the link (maestro recreates the directory).",
            )
        if not current.exists():
            current.mkdir(mode=0o700)
    return target


def write_files(files: list[FileWrite], root: Path) -> None:
    """Write a plan's files inside `root`, merging into the user's JSON settings where asked.

    A file of maestro's own (under .maestro/) is created readable by the user only; a settings file of
    the project's keeps its mode. Neither the file nor any directory on the way may be a symbolic link."""
    for f in files:
        path = _confined(Path(f.path), root)
        content = f.content
        existing_text = _read_nofollow(path) if f.merge_json else None
        if existing_text is not None:
            try:
                existing = json.loads(existing_text)
            except ValueError:
                existing = {}
            if isinstance(existing, dict):
                content = json.dumps(merge_settings(existing, json.loads(f.content)), indent=2) + "\n"
        own = Path(os.path.abspath(path)).is_relative_to(Path(os.path.abspath(root)) / ".maestro")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600 if own else 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InvalidArgument(
                    f"{path} is a symbolic link: maestro does not write through links.", "Remove the link."
                ) from exc
            raise
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(content)
        if own:
            os.chmod(path, 0o600, follow_symlinks=False)


def open_log(path: Path, root: Path) -> BinaryIO:
    """An agent's log under the project, for appending; never through a symbolic link."""
    target = _confined(path, root)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(target, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidArgument(f"{target} is a symbolic link: maestro does not write through links.") from exc
        raise
    return os.fdopen(fd, "ab")


def _read_nofollow(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidArgument(f"{path} is a symbolic link: maestro does not write through links.") from exc
        raise
    with os.fdopen(fd, encoding="utf-8", errors="replace") as existing:
        return existing.read()


def resolve_binary(argv0: str, env: dict[str, str], install_hint: str) -> str:
    if os.sep in argv0:
        if os.access(argv0, os.X_OK):
            return argv0
        raise NotFound(
            f"{argv0} is not an executable file.", "Fix the path in the launcher's argv, or make the file executable."
        )
    found = shutil.which(argv0, path=env.get("PATH"))
    if found is None:
        hint = f"Install it with `{install_hint}`." if install_hint else "Install it or fix PATH."
        raise NotFound(f"The agent CLI `{argv0}` is not on PATH.", hint)
    return found


def command_of(plan: LaunchPlan, binary: str) -> list[str]:
    """The argv that starts `plan`: its CLI, or for an observed plan the relay that runs it and records
    its structured output (maestro_mcp/relay.py), with the same interpreter as this server."""
    argv = [binary, *plan.argv[1:]]
    if not plan.observe:
        return argv
    relay = [sys.executable, "-m", "maestro_mcp.relay", "--cli", plan.agent, "--root", plan.root]
    return [*relay, "--log", plan.log_path, "--", *argv]


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


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _alive(pids: list[int]) -> list[int]:
    return [p for p in pids if pid_alive(p)]


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


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (children first), from /proc: an agent CLI's MCP servers and tools."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            if child not in found:
                found.append(child)
                queue.append(child)
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, when `pid` is alive."""
    return [pid, *descendants(pid)] if pid_alive(pid) else []


def describe_pids(pids: list[int]) -> str:
    """'1234 (claude --mcp-config …), 1240 (maestro serve)' for a message."""
    parts = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = ""
        parts.append(f"{pid} ({cmd[:60]})" if cmd else str(pid))
    return ", ".join(parts)


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
        write_files(plan.files, Path(plan.root))
        with open_log(Path(plan.log_path), Path(plan.root)) as log:
            process = await anyio.open_process(
                command_of(plan, binary),
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

    async def terminate(self, session_id: str, pid: int, grace_s: float) -> list[int]:
        """SIGTERM the agent and everything it started, then SIGKILL what is left after `grace_s`; return
        once all of it is gone, or the pids that still run (a process that ignored even SIGKILL's reach,
        such as one of another user).

        A spawned worker leads its own process group. An agent `maestro launch` runs in the user's terminal
        shares the terminal's group, so there the tree is walked instead: its CLI, its MCP servers, its tools.
        """
        tree = process_tree(pid)
        if not tree:
            return []
        leader = _leads_group(pid)
        self._signal(pid, tree, signal.SIGTERM, leader)
        if await self._gone(session_id, pid, grace_s) and not _alive(tree):
            return []
        left = _alive(tree) + [p for p in process_tree(pid) if p not in tree]
        self._signal(pid, left, signal.SIGKILL, leader)
        # SIGKILL cannot be refused, but it takes effect asynchronously: report a stop only once it has.
        with anyio.move_on_after(KILL_WAIT_S):
            for other in left:
                await wait_pid(other)
        await self._gone(session_id, pid, 0.1)
        return _alive(left)

    @staticmethod
    def _signal(pid: int, pids: list[int], sig: signal.Signals, leader: bool) -> None:
        if leader:
            signal_group(pid, sig)
        for other in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(other, sig)

    async def _gone(self, session_id: str, pid: int, within_s: float) -> bool:
        process = self._children.get(session_id)
        with anyio.move_on_after(within_s):
            if process is not None:
                await process.wait()
            else:
                await wait_pid(pid)  # a child of an earlier server process, or of `maestro launch`
            return True
        return False

    async def kill_all(self) -> None:
        for process in list(self._children.values()):
            signal_group(process.pid, signal.SIGKILL)
