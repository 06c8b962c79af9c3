"""Secrets: random tokens, their stored hashes, keyed hashes and password hashing."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile.
_hasher = PasswordHasher()
# Verified against when no account matches, so a miss costs as much as a hit.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + "x" * 16)

TOKEN_BYTES = 32


def new_token(prefix: str = "") -> str:
    """A URL-safe random secret with 256 bits of entropy."""
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(raw: str) -> str:
    """The stored form of a high-entropy token (SHA-256 suffices: nothing to guess)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def keyed_hash(*, secret: str, purpose: str, value: str) -> str:
    """An HMAC-SHA-256 that lets us match values (e-mail, IP) without keeping them."""
    message = f"{purpose}\x00{value}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password in constant work, whether or not there is a hash to check."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
