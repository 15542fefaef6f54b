"""Settings from MAESTRO_* environment variables (read once, then passed down), and where the store lives."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import InvalidArgument, StoreError

STORE_DIR = ".maestro"
STORE_FILE = "maestro.db"

# Limits that protect every agent sharing the store. Bodies above this are
# refused rather than truncated: a half message is worse than an error.
MAX_BODY_BYTES = 64 * 1024
MAX_SUBJECT_CHARS = 300
MAX_WAIT_S = 3600.0
# A safety net only: waiters are woken by the notifier within milliseconds.
SAFETY_POLL_S = 1.0


class Settings(BaseSettings):
    """Every MAESTRO_* setting, read once (`settings()`) and passed down to what needs it."""

    model_config = SettingsConfigDict(env_prefix="MAESTRO_", extra="ignore", frozen=True)

    db: str | None = Field(default=None, description="The store: a SQLite path or a postgresql:// URL.")
    session: str | None = Field(default=None, description="The session a server resumes (with `token`).")
    token: str | None = None
    hook_socket: str | None = Field(default=None, description="Where a spawned agent's CLI hooks reach its server.")
    permissions: str | None = Field(
        default=None, description="Set for an unattended worker: its server answers the CLI's permission hooks."
    )
    max_attempts: int = Field(default=3, ge=1, description="Times a task is handed out again after its worker ended.")
    max_workers: int = Field(default=10, ge=0, description="Live workers one coordinator may have at once.")
    connect_grace_s: int = Field(default=120, gt=0, description="How long a spawned worker has to connect.")
    keep_workers: bool = Field(default=False, description="Leave workers running when their coordinator ends.")
    pg_open_timeout_s: float = Field(default=30.0, ge=0, description="How long opening retries an unreachable server.")
    pg_pool_size: int = Field(
        default=1, ge=1, description="PostgreSQL connections a process may use at once (an idle one holds one)."
    )
    http_pg_pool_size: int = Field(default=20, ge=1, description="The same for `maestro serve --http`.")
    http_heartbeat_s: float = Field(default=120.0, gt=0, description="Silence before an HTTP session is exited.")
    http_head_timeout_s: float = Field(
        default=10.0, gt=0, description="Seconds an HTTP connection has to send a complete request head."
    )
    heartbeat_s: float = Field(default=2.0, gt=0, description="How often a serve process says it is alive.")
    heartbeat_expiry_s: float = Field(
        default=7.0, gt=0, description="Silence after which a session on another host is taken for dead."
    )
    host: str | None = Field(default=None, description="This machine's name for liveness (default: its hostname).")
    http_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Extra Host header values `maestro serve --http` accepts on loopback."
    )

    @field_validator("db", "session", "token", "hook_socket", "permissions", "host", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return value or None

    @field_validator("http_allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from `environ` (default: the process environment); a bad value is a clear error."""
        try:
            if environ is None:
                return cls()
            prefixed = {k[len("MAESTRO_") :].lower(): v for k, v in environ.items() if k.startswith("MAESTRO_")}
            return cls.model_validate({k: v for k, v in prefixed.items() if k in cls.model_fields})
        except ValidationError as exc:
            problems = "; ".join(
                f"MAESTRO_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidArgument(
                f"Bad maestro setting: {problems}.", "Fix or unset that environment variable."
            ) from None


@functools.cache
def settings() -> Settings:
    """This process's settings, read from the environment once."""
    return Settings.load()


@dataclass(frozen=True)
class Identity:
    """Who a `maestro serve` acts as, from MAESTRO_SESSION + MAESTRO_TOKEN."""

    session_id: str | None
    token: str | None

    @classmethod
    def of(cls, config: Settings) -> Identity:
        return cls(config.session, config.token)


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


def store_location(*, create: bool, start: Path | None = None, config: Settings | None = None) -> str:
    """The store to open: MAESTRO_DB, else `.maestro/maestro.db` found upward.

    With `create`, a missing store is placed at the project root (see
    `default_project_root`); without it, a missing store is an error that says
    how to make one.
    """
    explicit = (config or settings()).db
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


def project_root_for(location: str, cwd: Path | None = None) -> Path:
    """The project a store belongs to: the parent of `.maestro/` for a project store, else the working
    directory's project (a PostgreSQL URL or a store kept elsewhere)."""
    if not is_url(location):
        db = Path(location).resolve()
        if db.parent.name == STORE_DIR:
            return db.parent.parent
    return default_project_root(cwd)
