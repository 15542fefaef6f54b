"""Short, unguessable ids: a kind prefix and 10 base32 characters (50 bits)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def new_id(prefix: str) -> str:
    raw = base64.b32encode(secrets.token_bytes(7)).decode().lower().rstrip("=")
    return f"{prefix}-{raw[:10]}"


def new_token() -> str:
    """A session token: shown once, stored only as its hash."""
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    # Tokens are 192 random bits, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, token_hash: str | None) -> bool:
    return token_hash is not None and hmac.compare_digest(hash_token(token), token_hash)
