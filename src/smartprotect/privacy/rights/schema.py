"""The export's JSON Schema, published at /privacy/export-schema.json so that anyone can
check or read an export without us."""

from __future__ import annotations

from typing import Any

from smartprotect.devices.models import LocationMethod
from smartprotect.i18n import LANGUAGES
from smartprotect.privacy.consent.models import ConsentAction
from smartprotect.privacy.rights.export import EXPORT_FORMAT

SCHEMA_ID = "/privacy/export-schema.json"


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


MOMENT = {"type": "string", "format": "date-time"}
MAYBE_MOMENT = _nullable("string", format="date-time")
ID = {"type": "string", "format": "uuid"}


def _object(description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


def _rows(description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "description": description, "items": _object("", properties)}


EXPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "Smart Protect: everything held about a user (clause 5.4 of the privacy policy)",
    **_object(
        "One user's data. Times are ISO 8601 in UTC. Each item that has a retention clock "
        "says when it was provided: it is destroyed 1 year later (clause 2.4).",
        {
            "format": {"const": EXPORT_FORMAT},
            "generated_at": MOMENT,
            "retention": _object("The retention rule.", {
                "days": {"type": "integer"}, "rule": {"type": "string"},
            }),
            "subject_id": ID,
            "account": _object("The account (clauses 2.3.3, 2.3.5).", {
                "email": {"type": "string", "format": "email"},
                "email_verified_at": MAYBE_MOMENT, "email_provided_at": MAYBE_MOMENT,
                "pending_email": _nullable("string", description="A new address waiting for "
                                           "confirmation; not used until confirmed."),
                "phone": {"type": "string", "description": "E.164"},
                "phone_provided_at": MAYBE_MOMENT, "phone_verified_at": MAYBE_MOMENT,
                "language": {"enum": list(LANGUAGES)},
                "created_at": MOMENT, "password_changed_at": MOMENT,
            }),
            "profile": _object("The personal data profile (clauses 2.3.1, 2.3.2, 2.3.7).", {
                "last_name": _nullable("string"), "first_name": _nullable("string"),
                "patronymic": _nullable("string"), "names_provided_at": MAYBE_MOMENT,
                "passport": {"oneOf": [{"type": "null"}, _object("Passport data, as fields.", {
                    "number": {"type": "string"}, "authority": {"type": "string"},
                    "issued_on": {"type": "string", "format": "date"}, "provided_at": MOMENT,
                })]},
                "other_information": _nullable("string"),
                "other_information_provided_at": MAYBE_MOMENT,
            }),
            "consents": _object("Consents (clause 3): each purpose's state, and every event.", {
                "current": {"type": "object", "additionalProperties": {"type": "boolean"}},
                "history": _rows("Every grant, refusal and withdrawal, oldest first.", {
                    "purpose": {"type": "string"},
                    "scope": _nullable("string", description="null: the account; "
                                       "device:<id>: a permission given on one device"),
                    "action": {"enum": [a.value for a in ConsentAction]},
                    "channel": {"type": "string"}, "occurred_at": MOMENT,
                    "policy_document_id": ID, "user_agent": _nullable("string"),
                }),
            }),
            "policy_answers": _rows("Revisions of the policy accepted or declined (clause 8).", {
                "answer": {"enum": ["accepted", "declined"]}, "version": {"type": "string"},
                "language": {"type": "string"}, "channel": {"type": "string"}, "at": MOMENT,
            }),
            "devices": _rows("Enrolled devices (clauses 1.5, 2.3.4, 2.3.6).", {
                "id": ID, "name": {"type": "string"}, "platform": {"type": "string"},
                "agent_version": _nullable("string"),
                "capabilities": {"type": "array", "items": {"type": "string"}},
                "enrolled_at": MOMENT, "last_seen_at": MAYBE_MOMENT,
                "battery_percent": _nullable("integer"), "lost": {"type": "boolean"},
                "lost_since": MAYBE_MOMENT, "revoked_at": MAYBE_MOMENT,
                "accounts": {"type": ["array", "null"], "items": {"type": "string"},
                             "description": "OS accounts the device reported, if permitted."},
                "commands": _rows("Commands sent to the device, with every state's time.", {
                    "id": ID, "kind": {"type": "string"}, "state": {"type": "string"},
                    "parameters": {"type": "object"}, "issued_at": MOMENT,
                    "issued_by": {"type": "string"}, "expires_at": MOMENT,
                    "delivered_at": MAYBE_MOMENT, "started_at": MAYBE_MOMENT,
                    "finished_at": MAYBE_MOMENT, "result": _nullable("object"),
                }),
                "locations": _rows("Every stored fix, oldest first.", {
                    "latitude": {"type": "number", "minimum": -90, "maximum": 90},
                    "longitude": {"type": "number", "minimum": -180, "maximum": 180},
                    "accuracy_m": {"type": "number", "minimum": 0},
                    "method": {"enum": [m.value for m in LocationMethod]},
                    "fixed_at": MOMENT, "received_at": MOMENT,
                }),
                "fmd": {
                    "type": ["object", "null"],
                    "description": "For a phone with the FMD app: what it uploaded, encrypted "
                                   "on the phone; the company cannot read it.",
                    "properties": {
                        "username": {"type": "string"},
                        "protocol_version": {"enum": [1, 2]},
                        "public_key": {"type": "string"}, "private_key": {"type": "string"},
                        "salt": {"type": "string"},
                        "encrypted_master_key": _nullable("string"),
                        "how_to_decrypt": {"type": "string"},
                        "items": _rows("Uploads, oldest first (kept: 1 year at most).", {
                            "kind": {"enum": ["location", "picture", "command"]},
                            "uploaded_at": MOMENT, "ciphertext": {"type": "string"},
                            "client_item_id": _nullable("string"),
                            "unix_millis": _nullable("integer"),
                        }),
                    },
                    "required": ["username", "protocol_version", "public_key", "private_key",
                                 "salt", "encrypted_master_key", "how_to_decrypt", "items"],
                    "additionalProperties": False,
                },
            }),
            "audit_events": _rows("Audit log entries about the user (clause 5.1).", {
                "seq": {"type": "integer"}, "occurred_at": MOMENT,
                "action": {"type": "string"}, "actor": {"type": "string"},
                "purpose": _nullable("string"), "details": {"type": "object"},
                "personal_details": _nullable("object"),
            }),
            "technical": _object("Technical information (clause 2.2).", {
                "sign_in_sessions": _rows("", {"created_at": MOMENT, "last_seen_at": MOMENT,
                                                "expires_at": MOMENT}),
                "api_tokens": _rows("", {"name": {"type": "string"},
                                         "prefix": {"type": "string"}, "created_at": MOMENT,
                                         "last_used_at": MAYBE_MOMENT,
                                         "revoked_at": MAYBE_MOMENT}),
                "email_links": _rows("One-time links mailed to the user.", {
                    "purpose": {"type": "string"},
                    "created_at": MOMENT, "expires_at": MOMENT, "used_at": MAYBE_MOMENT}),
                "enrollment_codes": _rows("", {
                    "device_name": {"type": "string"},
                    "capabilities": {"type": "array", "items": {"type": "string"}},
                    "created_at": MOMENT, "expires_at": MOMENT}),
                "cookies": {"type": "array", "items": {"type": "string"}},
                "analytics": {"type": "string"},
            }),
        },
    ),
}  # fmt: skip
