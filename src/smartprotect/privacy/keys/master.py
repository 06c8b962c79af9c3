"""The master key that wraps every subject's data key.

Behind the `MasterKey` protocol so that a KMS (which never reveals its key) can replace the
local implementation: it only has to wrap and unwrap 32-byte data keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MASTER_KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE_MODE = 0o600


class MasterKeyError(RuntimeError):
    """The master key is missing, malformed or not the one the data was wrapped with."""


class MasterKey(Protocol):
    @property
    def key_id(self) -> str: ...

    def wrap(self, data_key: bytes, *, context: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, *, context: bytes) -> bytes: ...


class LocalMasterKey:
    """AES-256-GCM key wrapping with a key held in this process."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != MASTER_KEY_BYTES:
            raise MasterKeyError(f"a master key must be {MASTER_KEY_BYTES} bytes")
        self._aead = AESGCM(secret)
        # Identifies the key without revealing it, so wrapped keys can name their wrapper.
        self._key_id = hashlib.sha256(b"smartprotect master key id\x00" + secret).hexdigest()[:16]

    @property
    def key_id(self) -> str:
        return self._key_id

    def wrap(self, data_key: bytes, *, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, context)

    def unwrap(self, wrapped: bytes, *, context: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context)
        except InvalidTag:
            raise MasterKeyError(
                f"a data key does not unwrap with master key {self._key_id}"
            ) from None

    def __repr__(self) -> str:
        return f"LocalMasterKey(key_id={self._key_id!r})"


def encode_key(secret: bytes) -> str:
    return base64.urlsafe_b64encode(secret).decode()


def decode_key(text: str, *, source: str) -> bytes:
    try:
        secret = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{source} is not base64") from None
    if len(secret) != MASTER_KEY_BYTES:
        raise MasterKeyError(
            f"{source} must hold {MASTER_KEY_BYTES} random bytes, base64-encoded "
            "(make one with `smartprotect keys generate`)"
        )
    return secret


def new_key_text() -> str:
    """A fresh master key, base64-encoded, for a key file or the environment."""
    return encode_key(secrets.token_bytes(MASTER_KEY_BYTES))


def read_key_file(path: Path) -> LocalMasterKey:
    if not path.exists():
        raise MasterKeyError(f"the master key file {path} does not exist")
    return LocalMasterKey(decode_key(path.read_text(), source=f"the master key file {path}"))


def create_key_file(path: Path) -> LocalMasterKey:
    """Write a new random master key readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(new_key_text() + "\n")
    return read_key_file(path)


DEVELOPMENT_KEY_FILE = "master.key"


def from_settings(settings) -> LocalMasterKey:
    """The configured master key; development creates one under var/ if none is given."""
    if settings.master_key is not None and settings.master_key.get_secret_value().strip():
        return LocalMasterKey(
            decode_key(settings.master_key.get_secret_value(), source="SMARTPROTECT_MASTER_KEY")
        )
    if settings.master_key_file is not None:
        return read_key_file(settings.master_key_file)
    if settings.is_development:
        path = settings.development_key_file(DEVELOPMENT_KEY_FILE)
        return read_key_file(path) if path.exists() else create_key_file(path)
    raise MasterKeyError(
        "no master key: set SMARTPROTECT_MASTER_KEY or SMARTPROTECT_MASTER_KEY_FILE "
        "(make one with `smartprotect keys generate`)"
    )


class Keyring:
    """What privacy-aware services need to seal data and name subjects: the master key and
    the secret behind keyed hashes (pseudonyms, IP hashes)."""

    def __init__(self, *, master: MasterKey, secret: str) -> None:
        self.master = master
        self.secret = secret

    def __repr__(self) -> str:
        return f"Keyring(master={self.master!r})"


def keyring_from_settings(settings) -> Keyring:
    """The keyring of this process, or MasterKeyError saying what is missing."""
    return Keyring(master=from_settings(settings), secret=settings.secret_key.get_secret_value())
