"""Ed25519 signing keys kept in PEM files (audit anchors, commands to devices)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_FILE_MODE = 0o600


class SigningKeyError(RuntimeError):
    pass


def load(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        raise SigningKeyError(f"the signing key file {path} does not exist")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} does not hold an Ed25519 private key")
    return key


def create(path: Path) -> Ed25519PrivateKey:
    """Write a new key readable by its owner only."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    return key


def from_settings(
    settings, *, configured: Path | None, development_name: str, variable: str
) -> Ed25519PrivateKey:
    """The configured key; development creates one under var/ on first use."""
    if configured is not None:
        return load(configured)
    if settings.is_development:
        path = settings.development_key_file(development_name)
        return load(path) if path.exists() else create(path)
    raise SigningKeyError(f"no signing key: set {variable} to an Ed25519 private key (PEM)")


def public_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()
