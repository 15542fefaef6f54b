"""A project's own defaults for its workers: `.maestro/config.toml`.

```toml
[workers]
budget_usd = 5.0        # each worker's budget unless spawn_worker gives one (none: unlimited)
max_turns = 200         # each worker's turn limit unless spawn_worker gives one
stall_after_s = 600     # silence before the coordinator is told a worker stalled
activity_window = 2000  # recent activity events kept per worker in the store
```

`MAESTRO_STALL_AFTER_S` overrides `stall_after_s` for one process (tests, a quick experiment).
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maestro_mcp.errors import InvalidArgument

CONFIG_FILE = "config.toml"
STALL_AFTER_S = 600.0
ACTIVITY_WINDOW = 2000


@dataclass(frozen=True)
class WorkerDefaults:
    budget_usd: float | None = None
    max_turns: int | None = None
    stall_after_s: float = STALL_AFTER_S
    activity_window: int = ACTIVITY_WINDOW


def check_budget(budget_usd: float | None, where: str = "budget_usd") -> float | None:
    if budget_usd is None:
        return None
    if not isinstance(budget_usd, int | float) or isinstance(budget_usd, bool) or not math.isfinite(budget_usd):
        raise InvalidArgument(f"{where}={budget_usd!r} is not a number of dollars.", "Give dollars, e.g. 2.5.")
    if budget_usd <= 0:
        raise InvalidArgument(f"{where}={budget_usd} must be above zero.", "Give dollars, e.g. 2.5, or leave it out.")
    return float(budget_usd)


def check_turns(max_turns: int | None, where: str = "max_turns") -> int | None:
    if max_turns is None:
        return None
    if not isinstance(max_turns, int) or isinstance(max_turns, bool) or max_turns <= 0:
        raise InvalidArgument(f"{where}={max_turns!r} must be a whole number above zero.", "For example 50.")
    return max_turns


def load(project_root: Path) -> WorkerDefaults:
    """The project's worker defaults; a file with a mistake is refused with what to fix."""
    path = project_root / ".maestro" / CONFIG_FILE
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"{path}: not valid TOML: {exc}.", "Fix the file, or remove it.") from exc
    workers = data.get("workers", {})
    if not isinstance(workers, dict):
        raise InvalidArgument(f"{path}: `workers` must be a table ([workers]).")
    unknown = set(workers) - {"budget_usd", "max_turns", "stall_after_s", "activity_window"}
    if unknown:
        raise InvalidArgument(
            f"{path}: unknown setting(s) in [workers]: {', '.join(sorted(unknown))}.",
            "Known: budget_usd, max_turns, stall_after_s, activity_window.",
        )
    stall = workers.get("stall_after_s", STALL_AFTER_S)
    if env := os.environ.get("MAESTRO_STALL_AFTER_S"):
        try:
            stall = float(env)
        except ValueError as exc:
            raise InvalidArgument(f"MAESTRO_STALL_AFTER_S={env!r} is not a number of seconds.") from exc
    if not isinstance(stall, int | float) or isinstance(stall, bool) or stall <= 0:
        raise InvalidArgument(f"{path}: stall_after_s={stall!r} must be seconds above zero.")
    window = workers.get("activity_window", ACTIVITY_WINDOW)
    if not isinstance(window, int) or isinstance(window, bool) or not 10 <= window <= 1_000_000:
        raise InvalidArgument(f"{path}: activity_window={window!r} must be a whole number from 10 to 1000000.")
    return WorkerDefaults(
        budget_usd=check_budget(workers.get("budget_usd"), f"{path}: budget_usd"),
        max_turns=check_turns(workers.get("max_turns"), f"{path}: max_turns"),
        stall_after_s=float(stall),
        activity_window=window,
    )
