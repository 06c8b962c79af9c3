"""What a device receives for a command: the signed envelope (docs/device-protocol.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from typing_extensions import TypedDict

from smartprotect.commands.models import Kind


class SignedCommand(TypedDict):
    """A command for one device, signed by the server with Ed25519 over the canonical JSON of
    the other five fields (keys sorted, no spaces, UTF-8). A device refuses it unless the
    signature verifies with the key it got at enrollment, `device_id` is its own, `expires_at`
    is in the future and `command_id` was never executed before."""

    device_id: Annotated[str, Field(description="The device it is for (a UUID).")]
    command_id: Annotated[str, Field(description="Unique; executed at most once (a UUID).")]
    kind: Kind
    params: Annotated[
        dict[str, str],
        Field(description='lock: {"message", "phone"} to show on the locked screen; others: {}.'),
    ]
    expires_at: Annotated[str, Field(description="ISO 8601 with offset; refused after it.")]
    signature: Annotated[str, Field(description="Base64 of the 64-byte Ed25519 signature.")]
