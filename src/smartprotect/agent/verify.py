"""Checking a command before obeying it: signed by our server, for this device, not expired,
not seen before."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNED_FIELDS = ("device_id", "command_id", "kind", "params", "expires_at")


class Rejected(Exception):
    """A command the agent refuses to run: the reason is logged, nothing is done (a server
    that sends it again gets the same refusal)."""


def canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def check(
    command: dict, *, public_key: str, device_id: str, now: datetime, executed: set[str]
) -> dict:
    """The signed part of a command, or Rejected saying why it may not run."""
    if not isinstance(command, dict) or not command.get("signature"):
        raise Rejected("unsigned")
    try:
        payload = {field: command[field] for field in SIGNED_FIELDS}
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))
        key.verify(base64.b64decode(command["signature"]), canonical(payload))
    except (KeyError, ValueError, InvalidSignature):
        raise Rejected("bad signature") from None
    if payload["device_id"] != device_id:
        raise Rejected("meant for another device")
    if datetime.fromisoformat(payload["expires_at"]) <= now:
        raise Rejected("expired")
    if payload["command_id"] in executed:
        raise Rejected("replayed")
    return payload
