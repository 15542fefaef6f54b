"""`maestro migrate --to postgresql://…`: move a project's SQLite store into PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio
import typer

from maestro_mcp.cli.app import app, fail
from maestro_mcp.cli.common import run, services_at
from maestro_mcp.config import is_url, redact_url, store_location
from maestro_mcp.errors import Conflict, InvalidArgument


@app.command()
def migrate(
    to: Annotated[str, typer.Option("--to", help="URL of the PostgreSQL store to fill (must be empty).")],
    source: Annotated[
        Path | None, typer.Option("--from", help="The SQLite store to copy; default: this project's.")
    ] = None,
) -> None:
    """Copy this project's SQLite store (sessions, mail, receipts, directives, tasks, reports) into an
    empty PostgreSQL store, in one transaction. The SQLite file is left as it was."""
    if not is_url(to):
        raise fail(f"--to {to!r} is not a postgresql:// URL.", 2)

    async def body() -> dict[str, int]:
        from maestro_mcp.service import snapshot

        origin = str(source.resolve()) if source is not None else store_location(create=False)
        if is_url(origin):
            raise InvalidArgument(
                f"The source store {redact_url(origin)} is not a SQLite file.",
                "Pass --from .maestro/maestro.db, or unset MAESTRO_DB.",
            )
        if not await anyio.Path(origin).exists():
            raise InvalidArgument(f"No SQLite store at {origin}.", "Pass --from with the path of maestro.db.")
        async with services_at(origin) as src, services_at(to) as dst:
            if not await dst.store.is_empty():
                raise Conflict(
                    f"The PostgreSQL store {redact_url(to)} already holds data.",
                    "Migrate into an empty database or schema (add ?schema=NAME to the URL for a fresh one).",
                )
            doc = await snapshot.export(src.store)
            copied = await snapshot.restore(dst.store, doc, force=False)
            check = await dst.store.dump()
            short = [t for t, n in copied.items() if len(check.get(t, [])) != n]
            if short:
                raise Conflict(
                    f"The copy in {redact_url(to)} is incomplete ({', '.join(short)}).",
                    "Empty that store and run migrate again; the SQLite store is unchanged.",
                )
            return copied

    copied = run(body)
    summary = ", ".join(f"{n} {table}" for table, n in copied.items())
    typer.echo(f"copied {summary} to {redact_url(to)}")
    typer.echo("point every server at it: MAESTRO_DB='<that URL>' (the SQLite file is unchanged)", err=True)
