"""Signed anchors of the audit chain's head, to be kept outside the database.

An attacker who can rewrite the database can rebuild a consistent chain; an anchor kept
elsewhere (a ticket, a mail, a notary) pins what the chain said at a moment.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

DEVELOPMENT_SIGNING_KEY_FILE = "audit-signing.key"
KEY_FILE_MODE = 0o600


class AnchorError(RuntimeError):
    pass


@dataclass(frozen=True)
class Anchor:
    seq: int
    head_hash: str
    signed_at: str
    public_key: str
    signature: str

    def message(self) -> bytes:
        return f"smartprotect-audit-anchor\n{self.seq}\n{self.head_hash}\n{self.signed_at}".encode()

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Anchor:
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError) as exc:
            raise AnchorError(f"not an audit anchor: {exc}") from None


def _raw_public(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign(*, key: Ed25519PrivateKey, seq: int, head_hash: str, signed_at: datetime) -> Anchor:
    unsigned = Anchor(seq, head_hash, signed_at.isoformat(), _raw_public(key.public_key()), "")
    signature = base64.b64encode(key.sign(unsigned.message())).decode()
    return Anchor(**{**asdict(unsigned), "signature": signature})


def verify_signature(anchor: Anchor, *, expected_public_key: str | None = None) -> None:
    """Raise AnchorError unless the anchor is signed by its (or the expected) public key."""
    if expected_public_key is not None and anchor.public_key != expected_public_key:
        raise AnchorError("the anchor was signed by another key")
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(anchor.public_key))
        public.verify(base64.b64decode(anchor.signature), anchor.message())
    except (InvalidSignature, ValueError) as exc:
        raise AnchorError("the anchor's signature does not verify") from exc


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        raise AnchorError(f"the audit signing key file {path} does not exist")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise AnchorError(f"{path} does not hold an Ed25519 private key")
    return key


def create_signing_key(path: Path) -> Ed25519PrivateKey:
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


def signing_key_from_settings(settings) -> Ed25519PrivateKey:
    if settings.audit_signing_key_file is not None:
        return load_signing_key(settings.audit_signing_key_file)
    if settings.is_development:
        path = settings.development_key_file(DEVELOPMENT_SIGNING_KEY_FILE)
        return load_signing_key(path) if path.exists() else create_signing_key(path)
    raise AnchorError(
        "no audit signing key: set SMARTPROTECT_AUDIT_SIGNING_KEY_FILE to an Ed25519 PEM key"
    )
