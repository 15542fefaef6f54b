"""`maestro doctor`: is this project's setup working, and if not, what to do."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path

import anyio
import typer

from maestro_mcp.cli.app import app
from maestro_mcp.config import project_root_for, redact_url, store_location
from maestro_mcp.errors import MaestroError
from maestro_mcp.launch import definitions
from maestro_mcp.store import create_store, mail_topic
from maestro_mcp.store.sqlite_schema import MIGRATIONS

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass
class Check:
    level: str
    what: str
    detail: str
    fix: str = ""


async def _store_checks(location: str) -> list[Check]:
    checks = [Check(OK, "store", f"found at {redact_url(location)}")]
    store = create_store(location)
    try:
        await store.open()
        version = await store.schema_version()
        latest = MIGRATIONS[-1][0]
        checks.append(Check(OK, "schema", f"version {version} (this maestro knows {latest})"))
        health = await store.health()
        integrity = health.pop("integrity", "unknown")
        level = OK if integrity == "ok" else FAIL
        checks.append(Check(level, "integrity", integrity, "" if level == OK else "Restore from `maestro export`."))
        if health.get("journal_mode", "wal") != "wal":
            checks.append(Check(FAIL, "journal", f"mode {health['journal_mode']}", "Reopen with `maestro init`."))
        details = ", ".join(f"{k} {v}" for k, v in health.items())
        checks.append(Check(OK, "backend", details))
        checks.append(await _notifier_check(location))
    except MaestroError as exc:
        checks.append(Check(FAIL, "store", str(exc)))
    finally:
        await store.close()
    return checks


async def _notifier_check(location: str) -> Check:
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
        return Check(FAIL, "notifier", "no wake-up within 2 s", "Check that the run directory is writable.")
    finally:
        await listener.close()
        await sender.close()


def _version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"version unknown ({exc})"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def _config_check(root: Path, name: str) -> Check | None:
    """Whether the project's own MCP config for this CLI names the maestro server."""
    try:
        if name == "claude":
            data = json.loads((root / ".mcp.json").read_text())
            present = "maestro" in data.get("mcpServers", {})
        elif name == "gemini":
            data = json.loads((root / ".gemini" / "settings.json").read_text())
            present = "maestro" in data.get("mcpServers", {})
        elif name == "codex":
            data = tomllib.loads((root / ".codex" / "config.toml").read_text())
            present = "maestro" in data.get("mcp_servers", {})
        else:
            return None
    except FileNotFoundError:
        return Check(WARN, f"{name} config", "no project MCP config", "Run `maestro init` to write it.")
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        return Check(FAIL, f"{name} config", f"invalid: {exc}", "Fix or delete it, then run `maestro init`.")
    if not present:
        return Check(WARN, f"{name} config", "does not name the maestro server", "Run `maestro init`.")
    return Check(OK, f"{name} config", "maestro is configured for agents started by hand")


def _launcher_checks(root: Path) -> list[Check]:
    checks = []
    for name in sorted(definitions.available(root)):
        try:
            definition = definitions.load(name, root)
        except MaestroError as exc:
            checks.append(Check(FAIL, f"launcher {name}", str(exc), "Fix the definition file."))
            continue
        if definition.mcp_style == "env":
            checks.append(Check(OK, f"launcher {name}", "runs Python scripts with this interpreter"))
            continue
        binary = shutil.which(definition.binary)
        if binary is None:
            checks.append(Check(WARN, f"launcher {name}", f"`{definition.binary}` is not on PATH", definition.install))
        else:
            checks.append(Check(OK, f"launcher {name}", f"{binary}: {_version(binary)}"))
        config = _config_check(root, name)
        if config is not None:
            checks.append(config)
    return checks


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
    checks += _launcher_checks(root)
    for c in checks:
        typer.echo(f"[{c.level:>4}] {c.what}: {c.detail}" + (f"\n       -> {c.fix}" if c.fix else ""))
    failed = [c for c in checks if c.level == FAIL]
    typer.echo(f"{len(failed)} problem(s), {sum(c.level == WARN for c in checks)} warning(s)")
    raise typer.Exit(1 if failed else 0)
