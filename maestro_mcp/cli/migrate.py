"""`maestro migrate --to LOCATION`: copy a project's store into another, empty one (SQLite to PostgreSQL, usually)."""

from __future__ import annotations

from typing import Annotated

import anyio
import typer

from maestro_mcp.cli.app import app, fail
from maestro_mcp.cli.common import run, services_at
from maestro_mcp.config import is_url, redact_url, store_location
from maestro_mcp.errors import Conflict, InvalidArgument


@app.command()
def migrate(
    to: Annotated[
        str, typer.Option("--to", help="The store to fill (must be empty): a postgresql:// URL or a SQLite path.")
    ],
    source: Annotated[
        str | None, typer.Option("--from", help="The store to copy (a path or a URL); default: this project's.")
    ] = None,
) -> None:
    """Copy this project's store (sessions, mail, receipts, directives, tasks, reports) into an empty
    store, in one transaction. The source is left as it was. Either side may be SQLite or PostgreSQL."""

    async def body() -> dict[str, int]:
        from maestro_mcp.service import snapshot

        origin = source if source is not None else store_location(create=False)
        if not is_url(origin):
            path = anyio.Path(origin)
            if not await path.exists():
                raise InvalidArgument(f"No store at {origin}.", "Pass --from with the path of maestro.db, or a URL.")
            origin = str(await path.resolve())
        target = to if is_url(to) else str(await anyio.Path(to).resolve())
        if target == origin:
            raise InvalidArgument(f"--to names the store being copied ({redact_url(to)}).", "Name another store.")
        async with services_at(origin) as src, services_at(target) as dst:
            if not await dst.store.is_empty():
                raise Conflict(
                    f"The store {redact_url(to)} already holds data.",
                    "Migrate into an empty database or schema (add ?schema=NAME to the URL for a fresh one).",
                )
            doc = await snapshot.export(src.store)
            copied = await snapshot.restore(dst.store, doc, force=False)
            check = await dst.store.dump()
            short = [t for t, n in copied.items() if len(check.get(t, [])) != n]
            if short:
                raise Conflict(
                    f"The copy in {redact_url(to)} is incomplete ({', '.join(short)}).",
                    "Empty that store and run migrate again; the source store is unchanged.",
                )
            return copied

    if not to.strip():
        raise fail("--to is empty: name the store to fill.", 2)
    copied = run(body)
    summary = ", ".join(f"{n} {table}" for table, n in copied.items())
    typer.echo(f"copied {summary} to {redact_url(to)}")
    typer.echo("point every server at it: MAESTRO_DB='<that store>' (the source store is unchanged)", err=True)
