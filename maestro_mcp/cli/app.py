"""The typer application every command module registers on."""

from __future__ import annotations

from typing import Annotated

import typer

from maestro_mcp import __version__

app = typer.Typer(
    name="maestro",
    help="Coordinate teams of coding agents over MCP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` to stderr and return the Exit to raise: a clear line, never a traceback."""
    typer.echo(f"maestro: {message}", err=True)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"maestro {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Coordinate teams of coding agents over MCP."""
