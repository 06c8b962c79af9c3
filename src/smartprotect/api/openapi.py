"""What the OpenAPI document says beyond what FastAPI derives from the routes.

The device protocol must be described completely enough for a mobile app to implement it
(docs/device-protocol.md says it in words): the check-in, a plain Starlette route outside
FastAPI's routing, is added here; errors are RFC 9457 problem documents, not FastAPI's
validation-error shape; and the operations name the credential they take.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from smartprotect.api.v1.agent import CHECK_IN_PATH, check_in
from smartprotect.devices.schemas import CheckIn, CheckInResponse

PROBLEM_JSON = "application/problem+json"
API_PREFIX = "/api/v1/"
AGENT_PREFIX = "/api/v1/agent/"
# The agent's operations that take no credential (enrollment gives it).
WITHOUT_CREDENTIAL = {("post", "/api/v1/agent/enroll")}
# Our own API's operations that take no token.
PUBLIC = {("post", "/api/v1/accounts"), ("get", "/api/v1/policy")}
# The refusals each device operation can answer with, besides 422 for invalid input.
DEVICE_ERRORS: dict[tuple[str, str], dict[int, str]] = {
    ("post", "/api/v1/agent/enroll"): {
        404: "The enrollment code is unknown, expired or already used.",
    },
    ("post", CHECK_IN_PATH): {
        401: "No credential, or one that is unknown or revoked (a wiped device's is revoked).",
        422: "Malformed JSON, coordinates out of range, a fix time-stamped in the future, "
        "too many fixes or accounts.",
    },
    ("get", "/api/v1/agent/commands"): {
        401: "No credential, or one that is unknown or revoked.",
    },
    ("post", "/api/v1/agent/commands/{command_id}/state"): {
        401: "No credential, or one that is unknown or revoked.",
        403: "No such command for this device.",
        409: "The command cannot move to that state from its current one.",
    },
}


class Problem(BaseModel):
    """An RFC 9457 problem document, in the reader's language."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: dict[str, str] | None = Field(
        default=None, description="For invalid input: a message per field."
    )


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the check-in, problem documents and credentials to FastAPI's document."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in (CheckIn, CheckInResponse, Problem):
        _add_schema(schemas, model)
    spec["paths"][CHECK_IN_PATH] = {"post": _check_in_operation()}
    spec["components"]["securitySchemes"] = {
        "deviceCredential": {
            "type": "http", "scheme": "bearer",
            "description": "The device's credential (spdc_…), from enrollment.",
        },
        "apiToken": {
            "type": "http", "scheme": "bearer",
            "description": "A personal API token (spat_…), made on the account page.",
        },
    }  # fmt: skip
    for path, operations in spec["paths"].items():
        if not path.startswith(API_PREFIX):
            continue
        for method, operation in operations.items():
            if "fmd" in operation.get("tags", ()):
                continue  # the FMD protocol answers in its own terms (plain text)
            _describe_errors(method, path, operation)
            if path.startswith(AGENT_PREFIX):
                if (method, path) not in WITHOUT_CREDENTIAL:
                    operation["security"] = [{"deviceCredential": []}]
            elif (method, path) not in PUBLIC:
                operation["security"] = [{"apiToken": []}]
                operation["responses"].setdefault(
                    "401", _problem("No API token, or one that is unknown or revoked.")
                )
    return spec


def _add_schema(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas[model.__name__] = schema


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _describe_errors(method: str, path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    if "422" in responses:
        responses["422"] = _problem("Invalid input: nothing was changed.")
    for status, description in DEVICE_ERRORS.get((method, path), {}).items():
        responses[str(status)] = _problem(description)


def _check_in_operation() -> dict[str, Any]:
    return {
        "tags": ["agent"],
        "summary": "Check in",
        "description": check_in.__doc__.split("\n\n")[0].replace("\n", " "),
        "operationId": "check_in_api_v1_agent_check_in_post",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CheckIn"}}},
        },
        "responses": {
            # Refused by the server's body limit before any route: plain text.
            "413": {
                "description": "The body is larger than 1 MiB.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "200": {
                "description": "Stored and committed; any waiting commands, signed.",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/CheckInResponse"}}
                },
            },
        },
    }
