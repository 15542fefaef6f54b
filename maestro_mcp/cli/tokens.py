"""`maestro token`: bearer tokens for agents that reach `maestro serve --http` from another machine."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from maestro_mcp.cli.app import app, fail
from maestro_mcp.cli.common import run, services
from maestro_mcp.errors import NotFound
from maestro_mcp.ids import hash_token, new_token
from maestro_mcp.models import Role, SessionStatus

token_app = typer.Typer(help="Bearer tokens for agents on other machines (maestro serve --http).")
app.add_typer(token_app, name="token")


def _show(name: str, session_id: str, token: str, what: str) -> None:
    # The token alone on stdout (TOKEN=$(maestro token create ...)); the explanation on stderr.
    typer.echo(token)
    typer.echo(
        f"{what} session {name} ({session_id}). This token is shown once and stored only as a hash: give it to"
        " the agent as `Authorization: Bearer <token>` for maestro serve --http.",
        err=True,
    )


@token_app.command("create")
def create(
    name: Annotated[
        str | None, typer.Option(help="Name of the new session (unique in the project; optional with --operator).")
    ] = None,
    role: Annotated[Role, typer.Option(help="Its role.")] = Role.worker,
    parent: Annotated[str | None, typer.Option(help="The session (name or id) it reports to.")] = None,
    agent: Annotated[str | None, typer.Option(help="The agent kind, for humans reading status.")] = None,
    operator: Annotated[
        bool,
        typer.Option("--operator", help="A token for a human: the dashboard off loopback, /metrics (role operator)."),
    ] = False,
) -> None:
    """Register a session for a remote agent (or, with --operator, a human) and print its bearer token (once)."""
    if operator:
        if role not in (Role.worker, Role.operator) or parent is not None:
            raise fail("--operator is a role of its own: leave out --role and --parent.", 2)
        role = Role.operator
        name = name or f"operator-{secrets.token_hex(2)}"
    elif name is None:
        raise fail("Name the session: --name NAME (only --operator tokens get a name of their own).", 2)
    kind = agent or ("human" if role is Role.operator else "external")

    async def body() -> tuple[str, str, str]:
        async with services(create=True) as svc:
            registered = await svc.sessions.register(
                name=name, role=role, agent=kind, parent=parent, status=SessionStatus.idle
            )
            return registered.session.name, registered.session.id, registered.token

    session_name, session_id, token = run(body)
    if role is Role.operator:
        typer.echo(token)
        typer.echo(
            f"Created operator session {session_name} ({session_id}). This token is shown once and stored only as a"
            " hash: open the dashboard at http://HOST:PORT/?token=<token> once (the browser keeps it in a cookie),"
            " or send `Authorization: Bearer <token>` (for /metrics).",
            err=True,
        )
        return
    _show(session_name, session_id, token, "Created")


@token_app.command("rotate")
def rotate(name: Annotated[str, typer.Argument(help="Session name or id.")]) -> None:
    """Give an existing session a new token (the old one stops working) and print it (once)."""

    async def body() -> tuple[str, str, str]:
        async with services() as svc:
            session = await svc.sessions.get(name)
            token = new_token()
            await svc.store.set_token_hash(session.id, hash_token(token))
            return session.name, session.id, token

    session_name, session_id, token = run(body)
    _show(session_name, session_id, token, "New token for")


@token_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="Session name or id.")]) -> None:
    """Revoke a session's token: its requests get 401 from now on (the session itself stays)."""

    async def body() -> str:
        async with services() as svc:
            session = await svc.store.get_session(name)
            if session is None or not await svc.store.set_token_hash(session.id, None):
                raise NotFound(f"No session {name!r}.", "Run `maestro sessions` to see names.")
            return session.name

    revoked = run(body)
    typer.echo(f"revoked the token of {revoked}; `maestro token rotate {revoked}` issues a new one")
