"""The typer application every command module registers on."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from maestro_mcp import __version__
from maestro_mcp.config import settings

app = typer.Typer(
    name="maestro",
    help="Coordinate teams of coding agents over MCP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# Errors are written for the agents that call maestro's tools; a human reads the command instead.
HUMAN_COMMANDS = {
    "list_sessions": "`maestro sessions`",
    "list_siblings": "`maestro sessions`",
    "task_list": "`maestro tasks`",
    "task_get": "`maestro tasks`",
    "task_ready": "`maestro tasks`",
    "mail_inbox": "`maestro mail ls`",
    "mail_wait": "`maestro mail ls`",
    "mail_thread": "`maestro mail thread`",
    "approval_list": "`maestro approvals`",
    "approval_decide": "`maestro approve` / `maestro deny`",
    "spawn_worker": "`maestro launch`",
    "stop_worker": "`maestro stop`",
    "mail_send": "`maestro mail send`",
    "state_get": "`maestro state get`",
    "state_set": "`maestro state set`",
}
# A tool name as a word of its own: not part of a file name (approval_decide.json) or a path.
_TOOL_NAME = re.compile(r"(?<![\w./-])(" + "|".join(HUMAN_COMMANDS) + r")(?![\w/-]|\.\w)(?:\([^)]*\))?")


def for_humans(text: str) -> str:
    """An error meant for a model, with each tool it names replaced by the command a human runs."""
    return _TOOL_NAME.sub(lambda m: HUMAN_COMMANDS[m.group(1)], text)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` to stderr and return the Exit to raise: a clear line, never a traceback."""
    typer.echo(f"maestro: {for_humans(message)}", err=True)
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
    # Each command reads the MAESTRO_* settings once, at its start (commands also run in-process, in tests).
    settings.cache_clear()
