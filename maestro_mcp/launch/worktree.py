"""Git worktrees for isolated workers, and merging their branches back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio

from maestro_mcp.adapters.base import FileWrite
from maestro_mcp.errors import Conflict, InvalidArgument
from maestro_mcp.launch.spawner import write_files


async def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    result = await anyio.run_process(["git", *args], cwd=cwd, check=False)
    if check and result.returncode != 0:
        message = (result.stderr or result.stdout).decode(errors="replace").strip()
        raise InvalidArgument(f"git {' '.join(args)} failed: {message}")
    return result


async def git_root(path: Path) -> Path | None:
    result = await git(path, "rev-parse", "--show-toplevel", check=False)
    return Path(result.stdout.decode().strip()) if result.returncode == 0 else None


# maestro's own state (the store, logs, sockets, per-session configs, worktrees) is never committed; what a
# project sets up for its team in .maestro/ (its policy, launchers, templates, profiles) may be.
STATE_IGNORE = """# maestro's own state: the store, logs, sockets, per-session configs and worktrees
*
!policy.toml
!config.toml
!launchers/
!launchers/*.toml
!templates/
!templates/*.md
!profiles/
!profiles/*.md
"""


def ignore_state(project_root: Path) -> None:
    """Write `.maestro/.gitignore` (once): git then leaves maestro's state out of every commit."""
    path = project_root / ".maestro" / ".gitignore"
    if not path.exists():
        write_files([FileWrite(str(path), STATE_IGNORE)], project_root)


def branch_for(name: str) -> str:
    return f"maestro/{name}"


async def create(project_root: Path, name: str) -> tuple[Path, str]:
    """A worktree at .maestro/worktrees/NAME on a new branch maestro/NAME from HEAD."""
    if await git_root(project_root) is None:
        raise InvalidArgument(
            f"isolation='worktree' needs a git repository, and {project_root} is not in one.",
            "Use isolation='shared', or run `git init` and commit first.",
        )
    path = project_root / ".maestro" / "worktrees" / name
    if path.exists():
        raise Conflict(f"A worktree already exists at {path}.", "Choose another worker name.")
    branch = branch_for(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Else the project's `git add -A` would take the worktrees in as embedded repositories (and the store).
    ignore_state(project_root)
    await git(project_root, "worktree", "add", "-b", branch, str(path), "HEAD")
    return path, branch


async def remove(project_root: Path, path: Path, branch: str | None) -> None:
    await git(project_root, "worktree", "remove", "--force", str(path), check=False)
    if branch:
        await git(project_root, "branch", "-D", branch, check=False)


async def uncommitted(path: Path) -> list[str]:
    """Files changed but not committed in a worktree (what `maestro merge` cannot bring back)."""
    try:
        result = await git(path, "status", "--porcelain", "--untracked-files=all", check=False)
    except OSError:  # the worktree is gone
        return []
    if result.returncode != 0:
        return []
    return [line[3:] for line in result.stdout.decode(errors="replace").splitlines() if line.strip()]


async def merge(project_root: Path, branch: str) -> list[str]:
    """Merge `branch` into the current branch; on a conflict abort and return the conflicting files."""
    result = await git(project_root, "merge", "--no-ff", "--no-edit", branch, check=False)
    if result.returncode == 0:
        return []
    conflicted = await git(project_root, "diff", "--name-only", "--diff-filter=U", check=False)
    files = [line for line in conflicted.stdout.decode().splitlines() if line]
    await git(project_root, "merge", "--abort", check=False)
    if not files:
        message = (result.stderr or result.stdout).decode(errors="replace").strip()
        raise InvalidArgument(f"git merge {branch} failed: {message}")
    return files
