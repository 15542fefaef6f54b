"""The live web dashboard (`maestro dashboard`, and `/` beside `/mcp` on `maestro serve --http`), and /metrics."""

from __future__ import annotations

from .app import Dashboard

__all__ = ["Dashboard"]
