"""Snapshots: `maestro export` / `maestro import`, of the store alone (JSON) or full (a tarball)."""

from __future__ import annotations

import contextlib
import json
import sys
import tarfile
from pathlib import Path
from typing import Annotated

import anyio
import typer

from maestro_mcp.cli.app import app, fail
from maestro_mcp.cli.common import run, services
from maestro_mcp.config import project_root_for, store_location
from maestro_mcp.service import fullsnap, snapshot


@app.command("export")
def export_store(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write (default: stdout).")] = None,
    full: Annotated[
        bool, typer.Option("--full", help="A .tar.gz with the store, every log and a git bundle of each worker branch.")
    ] = False,
) -> None:
    """Write a JSON snapshot of the whole store: sessions, tasks, mail with receipts, reports, directives,
    activity, shared state. With --full, a tarball a new project can be restored from (docs/storage.md)."""
    if full:
        _export_full(output)
        return

    async def body() -> str:
        async with services() as svc:
            return json.dumps(await snapshot.export(svc.store), indent=1) + "\n"

    text = run(body)
    if output is None:
        sys.stdout.write(text)
        return
    # Written beside the target and renamed into place: an interrupted export never leaves half a file.
    partial = output.with_name(f".{output.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(output)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise fail(f"cannot write {output}: {exc.strerror or exc}") from None
    typer.echo(f"wrote {output}", err=True)


def _export_full(output: Path | None) -> None:
    if output is None:
        raise fail("--full writes a tarball: name it with -o FILE.tar.gz.", 2)

    async def body() -> str:
        location = store_location(create=False)
        async with services() as svc:
            contents = await fullsnap.export_full(svc.store, project_root_for(location), output)
        lines = [f"wrote {output}: the store, {len(contents.logs)} log(s), {len(contents.branches)} branch(es)"]
        for branch in contents.branches:
            if branch.uncommitted:
                lines.append(
                    f"warning: {branch.session}'s worktree has uncommitted changes the bundle does not hold:"
                    f" {', '.join(branch.uncommitted[:5])}"
                )
        return "\n".join(lines)

    typer.echo(run(body), err=True)


def _import_full(source: Path, dry_run: bool) -> None:
    async def body() -> str:
        # Checked whole before anything, the store included, is made.
        opened = await anyio.to_thread.run_sync(fullsnap.open_full, source)
        if dry_run:
            return _describe_full(opened.contents, "would restore")
        async with services(create=True) as svc:
            location = store_location(create=False)
            contents = await fullsnap.import_full(svc.store, project_root_for(location), source, opened)
        return _describe_full(contents, "restored")

    typer.echo(run(body))


def _describe_full(contents: fullsnap.Contents, verb: str) -> str:
    tables = ", ".join(f"{n} {table}" for table, n in contents.tables.items() if n)
    lines = [f"{verb}: store ({tables or 'empty'})", f"  {len(contents.logs)} log(s) into .maestro/logs/"]
    lines += [f"    {log}" for log in contents.logs]
    lines.append(f"  {len(contents.branches)} branch(es)")
    lines += [f"    {b.name} at {b.head[:12]} ({b.session})" for b in contents.branches]
    return "\n".join(lines)


@app.command("import")
def import_store(
    source: Annotated[Path, typer.Argument(help="A file written by `maestro export` (or `export --full`).")],
    force: Annotated[bool, typer.Option(help="Replace a store that is not empty (not for --full tarballs).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be restored; change nothing.")] = False,
) -> None:
    """Restore a snapshot into this project's store (refused over a non-empty store without --force). A
    tarball from `export --full` restores store, logs and branches into an empty project."""
    if source.name.endswith((".tar.gz", ".tgz")) or (source.is_file() and tarfile.is_tarfile(source)):
        if force:
            raise fail("--force is for JSON snapshots: a full snapshot restores into an empty project only.", 2)
        _import_full(source, dry_run)
        return
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {source}: {exc}") from None

    async def body() -> str:
        doc = snapshot.parse(text, str(source))
        if dry_run:
            found = ", ".join(f"{len(rows)} {table}" for table, rows in doc["tables"].items() if rows)
            return f"would import {found or 'nothing'}"
        async with services(create=True) as svc:
            counts = await snapshot.restore(svc.store, doc, force=force)
        return "imported " + ", ".join(f"{n} {table}" for table, n in counts.items())

    typer.echo(run(body))
