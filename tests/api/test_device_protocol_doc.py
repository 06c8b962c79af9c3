"""docs/device-protocol.md stays true: its operations are the server's, its worked example
matches the OpenAPI schemas, and its signed commands verify as it says they do."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smartprotect.agent import verify
from smartprotect.commands import service as commands

DOC = Path(__file__).parents[2] / "docs" / "device-protocol.md"
SIGNED = ("device_id", "command_id", "kind", "params", "expires_at")


@pytest.fixture(scope="module")
def text() -> str:
    return DOC.read_text(encoding="utf-8")


def _blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in re.findall(r"```(\w+)\n(.*?)```", text, re.S)
            if lang == language]  # fmt: skip


def _body(block: str) -> dict:
    """The JSON body of an HTTP example (after its headers)."""
    return json.loads(block.split("\n\n", 1)[1])


def test_the_documented_operations_are_the_servers(client, text):
    documented = set(re.findall(r"^\| `(GET|POST) (/api/v1/agent/[^`?]+)", text, re.M))
    served = {(method.upper(), path)
              for path, operations in client.get("/openapi.json").json()["paths"].items()
              if path.startswith("/api/v1/agent/") for method in operations}  # fmt: skip
    assert documented == served


def test_the_worked_example_matches_the_schemas_and_its_commands_verify(client, text):
    document = client.get("/openapi.json").json()

    def matches(name: str, instance) -> None:
        jsonschema.validate(instance, {"$ref": f"#/components/schemas/{name}",
                                       "components": document["components"]})  # fmt: skip

    http = _blocks(text, "http")
    enroll_request = _body(next(b for b in http if b.startswith("POST /api/v1/agent/enroll")))
    check_in = _body(next(b for b in http if b.startswith("POST /api/v1/agent/check-in")))
    report = _body(next(b for b in http if "/state" in b.split("\n", 1)[0]))
    answers = [json.loads(b) for b in _blocks(text, "json")]
    enrolled = next(a for a in answers if "credential" in a)
    checked_in = next(a for a in answers if "check_in_after_seconds" in a)
    for name, instance in (("EnrollRequest", enroll_request), ("EnrollResponse", enrolled),
                           ("CheckIn", check_in), ("CheckInResponse", checked_in),
                           ("CommandReport", report)):  # fmt: skip
        matches(name, instance)

    # The example key is what the text says it is.
    public = re.search(r"command_public_key = (\S+)", text).group(1)
    seed = hashlib.sha256(b"smartprotect device-protocol.md example key").digest()
    assert seed.hex() in text and enrolled["command_public_key"] == public
    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)  # fmt: skip
    assert base64.b64encode(raw).decode() == public

    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public))
    [canonical_line] = _blocks(text, "text")
    for command in checked_in["commands"]:
        signed = commands.canonical({name: command[name] for name in SIGNED})
        key.verify(base64.b64decode(command["signature"]), signed)
        # The bytes shown are the server's and the agent's canonical form.
        assert signed == verify.canonical({name: command[name] for name in SIGNED})
        assert signed.decode() in text or signed.decode() == canonical_line.rstrip("\n")
        verify.check(command, public_key=public, device_id=enrolled["device_id"],
                     now=datetime(2026, 11, 26, 9, 17, tzinfo=UTC), executed=set())  # fmt: skip
