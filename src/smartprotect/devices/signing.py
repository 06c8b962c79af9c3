"""The server's key for signing commands to devices."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smartprotect import signing

DEVELOPMENT_COMMAND_KEY_FILE = "command-signing.key"


def command_key_from_settings(settings) -> Ed25519PrivateKey:
    """The command-signing key, or SigningKeyError saying what to configure."""
    return signing.from_settings(
        settings,
        configured=settings.command_signing_key_file,
        development_name=DEVELOPMENT_COMMAND_KEY_FILE,
        variable="SMARTPROTECT_COMMAND_SIGNING_KEY_FILE",
    )
