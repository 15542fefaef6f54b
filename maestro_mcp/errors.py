"""One error tree. Every MaestroError becomes a clear tool error (or CLI message).

Each error says what was wrong and, through `hint`, what to do instead: the
reader is usually a model deciding its next tool call.
"""

from __future__ import annotations


class MaestroError(Exception):
    """Base of every expected failure. `str(err)` is the full user-facing text."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} {hint}")


class InvalidArgument(MaestroError):
    """An argument is malformed or out of range."""


class NotFound(MaestroError):
    """An id or name does not exist."""


class Conflict(MaestroError):
    """The request clashes with the current state (name taken, illegal transition)."""


class Forbidden(MaestroError):
    """The caller's role or ownership does not allow this."""


class AuthError(MaestroError):
    """A session id / token pair did not check out."""


class StoreError(MaestroError):
    """The store cannot be opened or used (missing, newer schema, corrupt, unreachable)."""


class SchemaTooNew(StoreError):
    """The store was written by a newer maestro."""
