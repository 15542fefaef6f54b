"""Settings from MAESTRO_* environment variables, and where the store lives."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import StoreError

STORE_DIR = ".maestro"
STORE_FILE = "maestro.db"

# Limits that protect every agent sharing the store. Bodies above this are
# refused rather than truncated: a half message is worse than an error.
MAX_BODY_BYTES = 64 * 1024
MAX_SUBJECT_CHARS = 300
MAX_WAIT_S = 3600.0
# A safety net only: waiters are woken by the notifier within milliseconds.
SAFETY_POLL_S = 1.0


def _env(name: str, environ: dict[str, str] | None = None) -> str | None:
    value = (environ if environ is not None else os.environ).get(name)
    return value if value else None


@dataclass(frozen=True)
class Identity:
    """Who a `maestro serve` acts as, from MAESTRO_SESSION + MAESTRO_TOKEN."""

    session_id: str | None
    token: str | None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Identity:
        return cls(_env("MAESTRO_SESSION", environ), _env("MAESTRO_TOKEN", environ))


def find_project_root(start: Path | None = None) -> Path | None:
    """The nearest directory at or above `start` holding `.maestro/`, like git finds `.git/`."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / STORE_DIR).is_dir():
            return candidate
    return None


def default_project_root(start: Path | None = None) -> Path:
    """Where a new store goes: an existing `.maestro/` above, else the git top level, else `start`."""
    here = (start or Path.cwd()).resolve()
    found = find_project_root(here)
    if found is not None:
        return found
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return here


def is_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def store_location(*, create: bool, start: Path | None = None, environ: dict[str, str] | None = None) -> str:
    """The store to open: MAESTRO_DB, else `.maestro/maestro.db` found upward.

    With `create`, a missing store is placed at the project root (see
    `default_project_root`); without it, a missing store is an error that says
    how to make one.
    """
    explicit = _env("MAESTRO_DB", environ)
    if explicit:
        if is_url(explicit):
            return explicit
        return str(Path(explicit).expanduser().resolve())
    root = find_project_root(start)
    if root is not None and (root / STORE_DIR / STORE_FILE).exists():
        return str(root / STORE_DIR / STORE_FILE)
    if not create:
        raise StoreError(
            f"No maestro store found in {(start or Path.cwd()).resolve()} or any parent directory.",
            "Run `maestro init` in the project root to create one, or set MAESTRO_DB to its path or URL.",
        )
    root = default_project_root(start)
    return str(root / STORE_DIR / STORE_FILE)


def redact_url(location: str) -> str:
    """A store location safe to print: the password of a URL (user:PASSWORD@ or ?password=) becomes ***."""
    if not is_url(location):
        return location
    parts = urlsplit(location)
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in creds else f"{user}@{host}"
    query = re.sub(r"(^|&)(password|sslpassword)=[^&]*", r"\1\2=***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def max_attempts() -> int:
    """Times a task is handed out again after its worker ended mid-task, before it is marked failed."""
    return _int_env("MAESTRO_MAX_ATTEMPTS", 3)


def max_workers() -> int:
    """Live workers one coordinator may have at once."""
    return _int_env("MAESTRO_MAX_WORKERS", 10)


def connect_grace_s() -> int:
    """How long a spawned worker has to connect its own server before it is marked failed."""
    return _int_env("MAESTRO_CONNECT_GRACE_S", 120)


def project_root_for(location: str, cwd: Path | None = None) -> Path:
    """The project a store belongs to: the parent of `.maestro/` for a project store, else the working
    directory's project (a PostgreSQL URL or a store kept elsewhere)."""
    if not is_url(location):
        db = Path(location).resolve()
        if db.parent.name == STORE_DIR:
            return db.parent.parent
    return default_project_root(cwd)


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


def pg_open_timeout_s() -> float:
    """How long opening a PostgreSQL store keeps retrying an unreachable server before it gives up."""
    return _float_env("MAESTRO_PG_OPEN_TIMEOUT_S", 30.0)


def http_heartbeat_s() -> float:
    """`maestro serve --http`: a session with no request and no open stream for this long is marked exited."""
    return _float_env("MAESTRO_HTTP_HEARTBEAT_S", 120.0)


def http_allowed_hosts() -> list[str]:
    """`maestro serve --http` on loopback: extra Host header values to accept (a reverse proxy's public name)."""
    raw = os.environ.get("MAESTRO_HTTP_ALLOWED_HOSTS", "")
    return [h.strip() for h in raw.split(",") if h.strip()]
