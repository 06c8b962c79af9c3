"""The agent obeys only commands signed by its server, for itself, fresh and new."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smartprotect.agent.verify import Rejected, check
from smartprotect.commands.service import sign
from smartprotect.signing import public_text

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DEVICE = "6f1c2d3e-0000-4000-8000-000000000001"


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


def _command(key, **overrides):
    payload = {
        "device_id": DEVICE, "command_id": "c-1", "kind": "ring", "params": {},
        "expires_at": (NOW + timedelta(days=1)).isoformat(),
    }  # fmt: skip
    payload.update(overrides)
    return {**payload, "signature": sign(payload, key)}


def _check(command, key, executed=()):
    return check(
        command, public_key=public_text(key.public_key()), device_id=DEVICE, now=NOW,
        executed=set(executed),
    )  # fmt: skip


def test_a_good_command_passes(key):
    assert _check(_command(key), key)["kind"] == "ring"


def test_unsigned_and_forged_commands_are_refused(key):
    command = _command(key)
    with pytest.raises(Rejected, match="unsigned"):
        _check({k: v for k, v in command.items() if k != "signature"}, key)
    with pytest.raises(Rejected, match="bad signature"):
        _check({**command, "kind": "wipe"}, key)  # altered after signing
    with pytest.raises(Rejected, match="bad signature"):
        _check(_command(Ed25519PrivateKey.generate()), key)  # signed by someone else
    with pytest.raises(Rejected, match="bad signature"):
        _check({**command, "signature": "not base64!"}, key)


def test_commands_for_another_device_expired_or_replayed_are_refused(key):
    with pytest.raises(Rejected, match="another device"):
        _check(_command(key, device_id="someone-else"), key)
    with pytest.raises(Rejected, match="expired"):
        _check(_command(key, expires_at=(NOW - timedelta(seconds=1)).isoformat()), key)
    with pytest.raises(Rejected, match="replayed"):
        _check(_command(key), key, executed={"c-1"})
