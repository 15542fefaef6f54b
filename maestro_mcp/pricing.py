"""Dollars for tokens, where an agent CLI reports only tokens: a small price table, editable by users.

The table ships in the wheel (maestro_mcp/data/prices.toml); a project's `.maestro/prices.toml` overrides
or adds models. A figure computed here is an estimate and is always shown as one.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from maestro_mcp.errors import InvalidArgument

PRICES_FILE = "prices.toml"


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    cached: float
    output: float

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int) -> float:
        # CLIs count cached tokens inside their input totals.
        uncached = max(0, input_tokens - cached_tokens)
        return (uncached * self.input + cached_tokens * self.cached + output_tokens * self.output) / 1_000_000


def _prices(data: dict[str, Any], source: str) -> tuple[dict[str, Price], Price | None]:
    def one(name: str, entry: Any) -> Price:
        if not isinstance(entry, dict):
            raise InvalidArgument(f"{source}: `{name}` must be a table with input, cached and output.")
        try:
            return Price(float(entry["input"]), float(entry["cached"] if "cached" in entry else entry["input"]),
                         float(entry["output"]))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"{source}: `{name}` needs numbers for input, cached and output ({exc}).") from exc

    models = {str(k): one(f"models.{k}", v) for k, v in (data.get("models") or {}).items()}
    default = one("default", data["default"]) if "default" in data else None
    return models, default


class PriceTable:
    def __init__(self, models: dict[str, Price], default: Price) -> None:
        self.models = models
        self.default = default

    @classmethod
    def load(cls, project_root: Path | None) -> PriceTable:
        builtin = resources.files("maestro_mcp") / "data" / PRICES_FILE
        models, default = _prices(tomllib.loads(builtin.read_text(encoding="utf-8")), "the built-in price table")
        own = project_root / ".maestro" / PRICES_FILE if project_root is not None else None
        if own is not None and own.is_file():
            try:
                data = tomllib.loads(own.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise InvalidArgument(f"{own}: not valid TOML: {exc}.") from exc
            extra, own_default = _prices(data, str(own))
            models.update(extra)
            default = own_default or default
        assert default is not None, "the built-in table has a default"
        return cls(models, default)

    def price(self, model: str) -> Price:
        """The price of the longest listed prefix of `model` (`gpt-5.1-codex` is priced as `gpt-5.1`)."""
        matches = [name for name in self.models if model.startswith(name)]
        return self.models[max(matches, key=len)] if matches else self.default

    def estimate(self, model: str, input_tokens: int, output_tokens: int, cached_tokens: int) -> float:
        return self.price(model).cost(input_tokens, output_tokens, cached_tokens)
