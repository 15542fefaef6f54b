"""Full snapshots: `maestro export --full` / `maestro import FILE.tar.gz`.

A full snapshot is a gzipped tarball holding what a restore needs to be useful, not only the store:

    manifest.json           what is inside (format, the branches with their head commits, the logs)
    store.json              the store document of `maestro export` (tasks, mail, sessions, activity, state)
    logs/...                every file under .maestro/logs/ (workers' output, raw CLI logs)
    git/<n>.bundle          a `git bundle` of each worker's branch (its worktree's commits)

Reading one never extracts blindly: every member is checked first (a regular file or directory, a
relative path without `..`, under one of the names above, within size bounds), and a tarball with
anything else is refused before a single byte is written. Files are then written by maestro itself,
each to a path it computed inside the project.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import anyio

from maestro_mcp.errors import Conflict, InvalidArgument
from maestro_mcp.launch.worktree import git, git_root, uncommitted
from maestro_mcp.models import now
from maestro_mcp.service import snapshot
from maestro_mcp.store import Store

FORMAT = "maestro-full-snapshot"
VERSION = 1
TOP = ("manifest.json", "store.json", "logs", "git")
MAX_MEMBER_BYTES = 2 * 1024**3
MAX_MEMBERS = 100_000
SAFE_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


@dataclass
class Branch:
    name: str
    session: str
    head: str
    bundle: str
    uncommitted: list[str] = field(default_factory=list)


@dataclass
class Contents:
    """What a full snapshot holds, as `import --dry-run` shows it."""

    tables: dict[str, int]
    logs: list[str]
    branches: list[Branch]
    exported_at: float | None = None


# -- export -----------------------------------------------------------------------------------------------
async def export_full(store: Store, project_root: Path, output: Path) -> Contents:
    doc = await snapshot.export(store)
    logs_dir = project_root / ".maestro" / "logs"
    logs = sorted(
        p.relative_to(logs_dir).as_posix() for p in await anyio.to_thread.run_sync(_files, logs_dir)
    )  # fmt: skip
    sessions = doc["tables"].get("sessions", [])
    branches: list[Branch] = []
    with tempfile.TemporaryDirectory() as tmp:
        if any(s.get("branch") for s in sessions) and await git_root(project_root) is not None:
            for n, session in enumerate(s for s in sessions if s.get("branch")):
                name = str(session["branch"])
                head = await git(project_root, "rev-parse", "--verify", "--quiet", f"refs/heads/{name}", check=False)
                if head.returncode != 0:
                    continue  # merged and deleted, or never made: nothing to keep
                bundle = f"git/{n + 1}.bundle"
                await git(project_root, "bundle", "create", str(Path(tmp) / f"{n + 1}.bundle"), f"refs/heads/{name}")
                changed: list[str] = []
                workspace = session.get("workspace")
                if workspace and await anyio.Path(str(workspace)).is_dir():
                    changed = await uncommitted(Path(str(workspace)))
                branches.append(Branch(name, str(session["name"]), head.stdout.decode().strip(), bundle, changed))
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "exported_at": now(),
            "schema_version": doc["schema_version"],
            "project_root": str(project_root),
            "logs": logs,
            "branches": [b.__dict__ for b in branches],
        }

        def write() -> None:
            partial = output.with_name(f".{output.name}.partial")
            try:
                with tarfile.open(partial, "w:gz") as tar:
                    _add_bytes(tar, "manifest.json", json.dumps(manifest, indent=1).encode())
                    _add_bytes(tar, "store.json", json.dumps(doc, indent=1).encode())
                    for rel in logs:
                        tar.add(logs_dir / rel, arcname=f"logs/{rel}", recursive=False)
                    for branch in branches:
                        tar.add(Path(tmp) / PurePosixPath(branch.bundle).name, arcname=branch.bundle, recursive=False)
                partial.replace(output)
            finally:
                partial.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(write)
    return Contents({t: len(rows) for t, rows in doc["tables"].items()}, logs, branches, manifest["exported_at"])


def _files(root: Path) -> list[Path]:
    """Regular files under `root` (links are not followed: a log that is a link is nobody's log)."""
    if not root.is_dir():
        return []
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(now())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


# -- import -----------------------------------------------------------------------------------------------
def check_members(tar: tarfile.TarFile, source: str) -> dict[str, tarfile.TarInfo]:
    """Every member, checked before anything is extracted; a bad one refuses the whole tarball."""
    members: dict[str, tarfile.TarInfo] = {}
    for count, member in enumerate(tar, 1):
        if count > MAX_MEMBERS:
            raise InvalidArgument(f"{source} has more than {MAX_MEMBERS} members.", "This is no maestro snapshot.")
        name = member.name
        norm = posixpath.normpath(name)
        bad = (
            name.startswith(("/", "\\"))
            or (len(name) > 1 and name[1] == ":")
            or "\\" in name
            or norm.startswith("..")
            or ".." in PurePosixPath(name).parts
            or norm.split("/", 1)[0] not in TOP
        )
        if bad:
            raise InvalidArgument(
                f"{source}: the member {name!r} points outside the snapshot's places; nothing was extracted.",
                "Import only tarballs written by `maestro export --full`.",
            )
        if not (member.isfile() or member.isdir()):
            raise InvalidArgument(
                f"{source}: the member {name!r} is a link or a device, not a file; nothing was extracted.",
                "Import only tarballs written by `maestro export --full`.",
            )
        if member.size > MAX_MEMBER_BYTES:
            raise InvalidArgument(f"{source}: the member {name!r} is {member.size} bytes; nothing was extracted.")
        if member.isfile():
            members[norm] = member
    for needed in ("manifest.json", "store.json"):
        if needed not in members:
            raise InvalidArgument(f"{source} has no {needed}.", "Pass a tarball written by `maestro export --full`.")
    return members


@dataclass
class Opened:
    manifest: dict[str, Any]
    doc: dict[str, Any]
    contents: Contents


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file, checked
    with handle:
        return handle.read()


def open_full(path: Path) -> Opened:
    """Read and check a full snapshot (the store document included) without writing anything."""
    source = str(path)
    try:
        with tarfile.open(path, "r:*") as tar:
            members = check_members(tar, source)
            manifest = json.loads(_read(tar, members["manifest.json"]))
            doc = snapshot.parse(_read(tar, members["store.json"]).decode(), f"{source}:store.json")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidArgument(
            f"cannot read {source} as a tarball: {exc}", "Pass a file from `maestro export --full`."
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{source}: manifest.json is damaged ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise InvalidArgument(f"{source} is not a maestro full snapshot (version {VERSION}).")
    branches = []
    for raw in manifest.get("branches", []):
        branch = Branch(
            **{k: raw[k] for k in ("name", "session", "head", "bundle")}, uncommitted=raw.get("uncommitted", [])
        )
        if (
            not SAFE_BRANCH.match(branch.name)
            or ".." in branch.name
            or posixpath.normpath(branch.bundle) not in members
        ):
            raise InvalidArgument(f"{source}: the branch entry {branch.name!r} is damaged; nothing was restored.")
        branches.append(branch)
    logs = [str(p) for p in manifest.get("logs", [])]
    for log in logs:
        if f"logs/{log}" not in {posixpath.normpath(m) for m in members}:
            raise InvalidArgument(f"{source}: the log {log!r} is listed but missing; nothing was restored.")
    tables = {t: len(rows) for t, rows in doc["tables"].items()}
    return Opened(manifest, doc, Contents(tables, logs, branches, manifest.get("exported_at")))


async def import_full(store: Store, project_root: Path, path: Path, opened: Opened) -> Contents:
    """Restore store, logs and branches into an empty project; `opened` is `open_full(path)`, read (and so
    checked whole) before the store was even opened."""
    if not await store.is_empty():
        raise Conflict(
            f"The store {store.location} is not empty: a full snapshot restores into an empty project.",
            "Import it in a new project directory (`maestro init` there first is not needed).",
        )
    for branch in opened.contents.branches:
        if await git_root(project_root) is not None:
            exists = await git(
                project_root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch.name}", check=False
            )
            if exists.returncode == 0:
                raise Conflict(
                    f"The branch {branch.name} exists in {project_root} already; nothing was restored.",
                    "Import into an empty project, or delete that branch first.",
                )
    await snapshot.restore(store, _moved(opened, project_root), force=False)
    logs_dir = project_root / ".maestro" / "logs"
    with tempfile.TemporaryDirectory() as tmp:

        def extract() -> None:
            with tarfile.open(path, "r:*") as tar:
                members = check_members(tar, str(path))
                for log in opened.contents.logs:
                    target = (logs_dir / log).resolve()
                    if not target.is_relative_to(logs_dir.resolve()):
                        continue  # cannot happen after check_members; kept as the last word on paths
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(_read(tar, members[f"logs/{log}"]))
                for branch in opened.contents.branches:
                    (Path(tmp) / PurePosixPath(branch.bundle).name).write_bytes(
                        _read(tar, members[posixpath.normpath(branch.bundle)])
                    )

        await anyio.to_thread.run_sync(extract)
        if opened.contents.branches:
            if await git_root(project_root) is None:
                await git(project_root, "init", "--quiet")
            for branch in opened.contents.branches:
                bundle = str(Path(tmp) / PurePosixPath(branch.bundle).name)
                await git(
                    project_root, "fetch", "--quiet", bundle, f"refs/heads/{branch.name}:refs/heads/{branch.name}"
                )
            await _worktrees(project_root, opened)
    return opened.contents


def _moved(opened: Opened, project_root: Path) -> dict[str, Any]:
    """The store document with sessions' workspaces and logs moved from the exported project to this one."""
    old = opened.manifest.get("project_root")
    if not isinstance(old, str) or not old:
        return opened.doc
    new = str(project_root)

    def move(value: Any) -> Any:
        if isinstance(value, str) and (value == old or value.startswith(old.rstrip("/") + "/")):
            return new + value[len(old) :]
        return value

    sessions = [
        {**row, "workspace": move(row.get("workspace")), "log_path": move(row.get("log_path"))}
        for row in opened.doc["tables"].get("sessions", [])
    ]
    return {**opened.doc, "tables": {**opened.doc["tables"], "sessions": sessions}}


async def _worktrees(project_root: Path, opened: Opened) -> None:
    """Each restored branch of a worktree worker gets its worktree back, where its session says it is."""
    sessions = {row.get("name"): row for row in _moved(opened, project_root)["tables"].get("sessions", [])}
    for branch in opened.contents.branches:
        row = sessions.get(branch.session) or {}
        workspace = row.get("workspace")
        if row.get("isolation") != "worktree" or not isinstance(workspace, str):
            continue
        path = anyio.Path(workspace)
        inside = (await path.resolve()).is_relative_to(await anyio.Path(project_root).resolve())
        if not inside or await path.exists():
            continue
        await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        await git(project_root, "worktree", "add", "--quiet", str(path), branch.name, check=False)
