"""The OpenAPI document describes the device protocol completely enough for a mobile app:
it is valid OpenAPI, has every device operation (the check-in too), their credentials and
refusals, and the server's real answers match the schemas it gives."""

from __future__ import annotations

import base64

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from openapi_spec_validator import validate
from sqlalchemy import select

from smartprotect.commands import service as commands
from smartprotect.commands.models import Kind
from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability, Device
from smartprotect.mail.links import Links
from tests.helpers import add_owner

AGENT = "/api/v1/agent"


@pytest.fixture
def document(client) -> dict:
    return client.get("/openapi.json").json()


def _matches(document: dict, name: str, instance) -> None:
    """Validate against a schema of the document, its references resolved within it."""
    jsonschema.validate(instance, {"$ref": f"#/components/schemas/{name}",
                                   "components": document["components"]})  # fmt: skip


def test_the_document_is_valid_openapi_with_every_device_operation(document):
    validate(document)
    device_operations = {
        (method, path)
        for path, operations in document["paths"].items() if path.startswith(AGENT)
        for method in operations
    }  # fmt: skip
    assert device_operations == {("post", f"{AGENT}/enroll"), ("post", f"{AGENT}/check-in"),
                                 ("get", f"{AGENT}/commands"),
                                 ("post", f"{AGENT}/commands/{{command_id}}/state")}  # fmt: skip
    schemes = document["components"]["securitySchemes"]
    assert schemes["deviceCredential"] == {**schemes["deviceCredential"], "type": "http",
                                           "scheme": "bearer"}  # fmt: skip
    for method, path in device_operations - {("post", f"{AGENT}/enroll")}:
        operation = document["paths"][path][method]
        assert operation["security"] == [{"deviceCredential": []}]
        assert "application/problem+json" in operation["responses"]["401"]["content"]
    check_in = document["paths"][f"{AGENT}/check-in"]["post"]
    assert set(check_in["responses"]) == {"200", "401", "413", "422"}
    assert document["paths"][f"{AGENT}/enroll"]["post"]["responses"]["404"]
    # The signed envelope names exactly what the server signs, and the signature.
    envelope = document["components"]["schemas"]["SignedCommand"]
    signed = {"device_id", "command_id", "kind", "params", "expires_at"}
    assert set(envelope["properties"]) == set(envelope["required"]) == signed | {"signature"}


def test_real_answers_match_the_documented_schemas(client, document, db, clock, keyring,
                                                   published_policy):  # fmt: skip
    owner = add_owner(db, clock=clock, keyring=keyring)
    _, code = devices.create_enrollment_code(
        session=db, keyring=keyring, user=owner, device_name="Phone",
        capabilities=[Capability.LOCATE, Capability.LOCK], clock=clock,
    )  # fmt: skip
    db.commit()
    enroll = {"code": code, "platform": "android", "agent_version": "1.0"}
    _matches(document, "EnrollRequest", enroll)
    enrolled = client.post(f"{AGENT}/enroll", json=enroll)
    assert enrolled.status_code == 201
    _matches(document, "EnrollResponse", enrolled.json())
    auth = {"Authorization": f"Bearer {enrolled.json()['credential']}"}

    device = db.scalar(select(Device))
    commands.issue(session=db, keyring=keyring, user=owner, device=device, kind=Kind.LOCK,
                   clock=clock, links=Links(base_url="https://testserver"),
                   message="Please call me", phone="+77015550100")  # fmt: skip
    db.commit()
    check_in = {"battery_percent": 40, "locations": [{
        "latitude": 43.2, "longitude": 76.9, "accuracy_m": 12.5, "method": "wifi",
        "fixed_at": clock.now().isoformat()}]}  # fmt: skip
    _matches(document, "CheckIn", check_in)
    answered = client.post(f"{AGENT}/check-in", json=check_in, headers=auth)
    assert answered.status_code == 200
    _matches(document, "CheckInResponse", answered.json())
    [command] = answered.json()["commands"]
    assert command["params"] == {"message": "Please call me", "phone": "+77015550100"}
    # Verified as the document says: Ed25519 over the canonical JSON of the other fields.
    key = Ed25519PublicKey.from_public_bytes(
        base64.b64decode(enrolled.json()["command_public_key"]))  # fmt: skip
    payload = {name: command[name] for name in command if name != "signature"}
    key.verify(base64.b64decode(command["signature"]), commands.canonical(payload))

    polled = client.get(f"{AGENT}/commands", params={"wait": 0}, headers=auth)
    _matches(document, "PollResponse", polled.json())
    report = {"state": "succeeded", "result": {"locked": True}}
    _matches(document, "CommandReport", report)
    path = f"{AGENT}/commands/{command['command_id']}/state"
    assert client.post(path, json=report, headers=auth).status_code == 204

    refused = client.post(f"{AGENT}/check-in", json={"battery_percent": 140}, headers=auth)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    _matches(document, "Problem", refused.json())
    with pytest.raises(jsonschema.ValidationError):
        _matches(document, "CheckIn", {"battery_percent": 140})
