"""Shared state: values the whole team reads by key, compare-and-set, expiry, and waiting for a change."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

from maestro_mcp.config import MAX_WAIT_S, SAFETY_POLL_S
from maestro_mcp.errors import Conflict, InvalidArgument, NotFound
from maestro_mcp.models import SessionRecord, StateEntry, iso
from maestro_mcp.store import Store
from maestro_mcp.store.notify import state_topic

MAX_VALUE_BYTES = 64 * 1024
MAX_KEY_CHARS = 200
MAX_TTL_S = 90 * 24 * 3600.0
# Keys are names, not paths: no '/', so a key never reads as a file or a URL path, and no '..'.
KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@-]*$")
KEY_RULE = "Use letters, digits and . _ : @ - (no '/' and no '..'), at most 200 characters, e.g. api.port."


def task_result_key(task_key: str) -> str:
    return f"task.{task_key}.result"


def check_key(key: str) -> str:
    if not key:
        raise InvalidArgument("The state key is empty.", KEY_RULE)
    if len(key) > MAX_KEY_CHARS:
        raise InvalidArgument(f"The state key is {len(key)} characters long.", KEY_RULE)
    if "/" in key or ".." in key or not KEY_RE.match(key):
        raise InvalidArgument(f"The state key {key!r} is not valid.", KEY_RULE)
    return key


def check_value(value: str) -> str:
    size = len(value.encode())
    if size > MAX_VALUE_BYTES:
        raise InvalidArgument(
            f"The value is {size} bytes; the limit is {MAX_VALUE_BYTES} (64 KiB).",
            "Store a smaller value, e.g. a file path or a summary, and keep the bulk in the repository.",
        )
    try:
        json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"The value is not JSON ({exc.msg} at character {exc.pos}).",
            'Pass JSON text: a string is quoted ("ready"), numbers, true/false, objects and lists as they are.',
        ) from None
    return value


@dataclass(frozen=True)
class StateView:
    """A value as tools and humans see it: who set it by name, times in ISO 8601."""

    key: str
    value: str | None
    version: int
    set_by: str | None
    set_at: str | None
    expires_at: str | None


class StateService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def view(self, entry: StateEntry) -> StateView:
        who = await self.store.get_session(entry.set_by) if entry.set_by else None
        return StateView(
            key=entry.key,
            value=entry.value,
            version=entry.version,
            set_by=who.name if who else entry.set_by,
            set_at=iso(entry.set_at),
            expires_at=iso(entry.expires_at),
        )

    async def set(
        self,
        caller: SessionRecord | None,
        key: str,
        value: str,
        *,
        ttl_s: float | None = None,
        if_version: int | None = None,
    ) -> StateEntry:
        check_key(key)
        check_value(value)
        if ttl_s is not None and not 0 < ttl_s <= MAX_TTL_S:
            raise InvalidArgument(f"ttl_s={ttl_s} is out of range.", f"Use more than 0, up to {MAX_TTL_S:.0f} s.")
        if if_version is not None and if_version < 0:
            raise InvalidArgument(f"if_version={if_version} is negative.", "Use 0 for 'only if unset', or a version.")
        write = await self.store.put_state(
            key, value, set_by=caller.id if caller else None, ttl_s=ttl_s, if_version=if_version
        )
        if write.won:
            assert write.entry is not None  # a write that won returns what it stored
            return write.entry
        if write.entry is None:
            raise Conflict(
                f"State key {key!r} is unset (current version 0), not version {if_version}.",
                "Retry with if_version=0 to create it.",
            )
        current = await self.view(write.entry)
        raise Conflict(
            f"State key {key!r} is at version {current.version} (set by {current.set_by} at {current.set_at}),"
            f" not {if_version}: someone changed it first.",
            f"Read it with state_get, then retry with if_version={current.version} if your change still applies.",
        )

    async def get(self, key: str, *, wait_s: float | None = None, after_version: int = 0) -> StateEntry | None:
        """The live value of `key`; with `wait_s`, wait until its version is above `after_version`
        (by default, until it is set). None only when it is unset at the end."""
        check_key(key)
        if wait_s is None:
            return await self.store.get_state(key)
        if not 0 <= wait_s <= MAX_WAIT_S:
            raise InvalidArgument(f"wait_s={wait_s} is out of range.", f"Use 0 to {MAX_WAIT_S:.0f} seconds.")
        deadline = time.monotonic() + wait_s
        # Subscribe before looking, so a set committed between the look and the sleep still rings.
        async with self.store.subscribe(state_topic(key)) as bell:
            while True:
                entry = await self.store.get_state(key)
                if entry is not None and entry.version > after_version:
                    return entry
                left = deadline - time.monotonic()
                if left <= 0:
                    return entry
                await bell.wait(min(left, SAFETY_POLL_S))

    async def require(self, key: str, *, wait_s: float | None = None, after_version: int = 0) -> StateEntry:
        entry = await self.get(key, wait_s=wait_s, after_version=after_version)
        if entry is None:
            waited = f" after waiting {wait_s:g} s" if wait_s else ""
            raise NotFound(
                f"State key {key!r} is not set{waited} (never set, or expired).",
                "state_get with wait_s waits for it; state_set(if_version=0) creates it.",
            )
        return entry

    async def listed(self, prefix: str = "", limit: int = 1000) -> list[StateEntry]:
        return await self.store.list_state(prefix, limit)

    async def unset(self, key: str) -> bool:
        return await self.store.expire_state(check_key(key))
