"""Scripted agents shipped with maestro: they power `maestro demo` and need no model or network."""
