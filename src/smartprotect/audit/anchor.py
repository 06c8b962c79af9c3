"""Signed anchors of the audit chain's head, to be kept outside the database.

An attacker who can rewrite the database can rebuild a consistent chain; an anchor kept
elsewhere (a ticket, a mail, a notary) pins what the chain said at a moment.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from smartprotect import signing

DEVELOPMENT_SIGNING_KEY_FILE = "audit-signing.key"


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


def sign(*, key: Ed25519PrivateKey, seq: int, head_hash: str, signed_at: datetime) -> Anchor:
    unsigned = Anchor(
        seq, head_hash, signed_at.isoformat(), signing.public_text(key.public_key()), ""
    )
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


def signing_key_from_settings(settings) -> Ed25519PrivateKey:
    try:
        return signing.from_settings(
            settings,
            configured=settings.audit_signing_key_file,
            development_name=DEVELOPMENT_SIGNING_KEY_FILE,
            variable="SMARTPROTECT_AUDIT_SIGNING_KEY_FILE",
        )
    except signing.SigningKeyError as exc:
        raise AnchorError(str(exc)) from exc
