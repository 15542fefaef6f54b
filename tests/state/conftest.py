"""Shared-state tests: the in-memory team (`team` from ../conftest.py) and real processes."""
