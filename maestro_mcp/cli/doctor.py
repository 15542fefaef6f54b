"""`maestro doctor`: is this project's setup working, and if not, what to do."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import anyio
import typer

from maestro_mcp.cli.agent_checks import FAIL, OK, WARN, Check, config_checks, launcher_checks
from maestro_mcp.cli.app import app
from maestro_mcp.config import project_root_for, redact_url, store_location
from maestro_mcp.errors import MaestroError
from maestro_mcp.store import create_store, mail_topic
from maestro_mcp.store.schema import LATEST


async def _store_checks(location: str) -> list[Check]:
    checks = [Check(OK, "store", f"found at {redact_url(location)}")]
    store = create_store(location)
    try:
        await store.open()
        version = await store.schema_version()
        checks.append(Check(OK, "schema", f"version {version} (this maestro knows {LATEST})"))
        # Whatever the backend reports: the doctor knows no backend's details.
        health = await store.health()
        integrity = health.pop("integrity", "unknown")
        level = OK if integrity == "ok" else FAIL
        checks.append(Check(level, "integrity", integrity, "" if level == OK else "Restore from `maestro export`."))
        fix = health.pop("notifier_fix", "")
        details = ", ".join(f"{k} {v}" for k, v in health.items())
        checks.append(Check(OK, "backend", details))
        checks.append(await _notifier_check(location, fix))
    except MaestroError as exc:
        checks.append(Check(FAIL, "store", str(exc)))
    finally:
        await store.close()
    return checks


async def _notifier_check(location: str, fix: str) -> Check:
    """A real wake-up round trip between two store connections, as between two server processes."""
    listener, sender = create_store(location), create_store(location)
    topic_owner = f"doctor-{uuid.uuid4().hex[:8]}"
    try:
        await listener.open()
        await sender.open()
        async with anyio.create_task_group() as tg:
            await listener.listen(topic_owner, tg)
            async with listener.subscribe(mail_topic(topic_owner)) as bell:
                started = time.perf_counter()
                # A bare wake-up: nothing is stored, so the check leaves nothing behind.
                await sender.wake([mail_topic(topic_owner)])
                rung = await bell.wait(2.0)
                elapsed = (time.perf_counter() - started) * 1000
            tg.cancel_scope.cancel()
        if rung:
            return Check(OK, "notifier", f"wake-up round trip {elapsed:.1f} ms")
        return Check(FAIL, "notifier", "no wake-up within 2 s", fix)
    finally:
        await listener.close()
        await sender.close()


@app.command()
def doctor() -> None:
    """Check the store, the wake-up notifier and every launcher; say what to do about each problem."""
    try:
        location = store_location(create=False)
    except MaestroError as exc:
        checks = [Check(FAIL, "store", str(exc))]
        root = Path.cwd()
    else:
        checks = anyio.run(_store_checks, location)
        root = project_root_for(location)
    checks += launcher_checks(root)
    checks += anyio.run(config_checks, root, dict(os.environ))
    for c in checks:
        fix = c.fix.replace("\n", "\n          ")
        typer.echo(f"[{c.level:>4}] {c.what}: {c.detail}" + (f"\n       -> {fix}" if fix else ""))
    failed = [c for c in checks if c.level == FAIL]
    typer.echo(f"{len(failed)} problem(s), {sum(c.level == WARN for c in checks)} warning(s)")
    raise typer.Exit(1 if failed else 0)
