"""Merging maestro's entries into a settings file the user (or the project) owns.

One rule for `maestro init` and for every launch: objects merge key by key, maestro's values win for
its own keys, and lists keep every entry of the user's. A list entry maestro wrote before (a hook whose
name starts with "maestro-") is replaced by the new one rather than kept twice.
"""

from __future__ import annotations

from typing import Any

OWN_PREFIX = "maestro-"


def _ours(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    if str(entry.get("name", "")).startswith(OWN_PREFIX):
        return True
    return any(_ours(h) for h in entry.get("hooks") or [] if isinstance(entry.get("hooks"), list))


def merge_settings(existing: Any, ours: Any) -> Any:
    if isinstance(existing, dict) and isinstance(ours, dict):
        merged = dict(existing)
        for key, value in ours.items():
            merged[key] = merge_settings(existing[key], value) if key in existing else value
        return merged
    if isinstance(existing, list) and isinstance(ours, list):
        kept = [e for e in existing if not _ours(e)]
        return kept + [v for v in ours if v not in kept]
    return ours
