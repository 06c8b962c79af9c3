"""Downloading everything held about you, from the privacy page (clause 5.4)."""

from __future__ import annotations

from jsonschema import Draft202012Validator
from sqlalchemy import select

from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from smartprotect.i18n import translations
from smartprotect.privacy.rights.schema import EXPORT_SCHEMA
from tests.helpers import form_page
from tests.web.conftest import EMAIL


def test_the_privacy_page_offers_the_download(signed_in):
    html = signed_in.get("/account/privacy").text
    assert "/account/privacy/export.json" in html and "/privacy/export-schema.json" in html


def test_the_json_download_is_complete_valid_and_audited(signed_in, db):
    response = signed_in.get("/account/privacy/export.json")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    Draft202012Validator(EXPORT_SCHEMA).validate(data)
    assert data["account"]["email"] == EMAIL and data["profile"]["last_name"] == "Сейткали"
    assert data["consents"]["current"]["processing_and_storage"] is True
    # The export itself is in the audit log, and in the export.
    assert Tag.PRIVACY_EXPORTED in {event["action"] for event in data["audit_events"]}
    exported = db.scalars(select(AuditEvent).where(AuditEvent.action == Tag.PRIVACY_EXPORTED))
    assert [e.details for e in exported] == [{"form": "json"}]


def test_the_readable_document_in_the_users_language(signed_in):
    _ = translations("ru").gettext
    html = signed_in.get("/ru/account/privacy/export.html").text
    assert _("Everything Smart Protect holds about you") in html
    assert EMAIL in html and "Сейткали" in html and "+77012345678" in html


def test_the_schema_is_public_and_the_download_is_not(client, signed_in):
    schema = client.get("/privacy/export-schema.json")
    assert schema.status_code == 200 and schema.json()["title"].startswith("Smart Protect")
    signed_in.post("/logout", data={"csrf_token": form_page(signed_in, "/account")})
    assert client.get("/account/privacy/export.json").status_code == 303  # to sign in
