"""Passwords (Argon2id), session tokens, CSRF tokens and response headers."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi defaults: Argon2id, t=3, m=64 MiB, p=4 — above the OWASP floor
# (OWASP Password Storage Cheat Sheet: Argon2id, m = 19 MiB, t = 2, p = 1)
HASHER = PasswordHasher()
_DUMMY = HASHER.hash(secrets.token_urlsafe(16))

SECURITY_HEADERS = {
    # no scripts at all, styles only from the app's own stylesheet (no inline <style> or
    # style="" attributes), nothing from another origin
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=31536000",
}


def hash_password(password: str) -> str:
    """An Argon2id hash."""
    return HASHER.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    """Verify; for an unknown user a dummy hash is verified so timing reveals nothing."""
    try:
        return HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A 256-bit random token."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored for a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two tokens (False if either is missing; any characters
    may be given: they are compared as UTF-8 bytes)."""
    return bool(a) and bool(b) and secrets.compare_digest(str(a).encode("utf-8", "replace"),
                                                          str(b).encode("utf-8", "replace"))


__all__ = ["SECURITY_HEADERS", "check_password", "hash_password", "new_token", "same",
           "token_hash"]
