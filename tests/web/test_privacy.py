"""The privacy pages: revisions, answering a new one, closing the account, the consents."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from smartprotect.accounts.models import User
from smartprotect.audit.models import AuditEvent
from smartprotect.db import unit_of_work
from smartprotect.i18n import translations
from smartprotect.privacy.consent.models import ConsentEvent, Purpose
from smartprotect.privacy.consent.purposes import PER_DEVICE
from smartprotect.privacy.keys.models import SubjectKey
from smartprotect.privacy.policy import service as policy
from tests.helpers import PASSWORD, form_page, login_via_web

EMAIL = "aigerim@example.kz"
NEW_TEXTS = {"en": "Revised policy, clause 2.4: one year.", "ru": "Новая редакция, пункт 2.4."}


def _publish_new(session_factory, clock, keyring, version="2026-11-26"):
    clock.advance(timedelta(days=1))
    with unit_of_work(session_factory) as session:
        revision, _ = policy.publish_revision(
            session=session, keyring=keyring, version=version, texts=NEW_TEXTS, clock=clock
        )
        return revision.id


def test_privacy_page_shows_the_revision_in_force_and_the_earlier_ones(
    client, published_policy, session_factory, clock, keyring
):
    assert "Smart Protect collects, accesses and uses" in client.get("/privacy").text
    assert "Smart Protect собирает, получает доступ" in client.get("/ru/privacy").text
    _publish_new(session_factory, clock, keyring)
    html = client.get("/privacy").text
    assert NEW_TEXTS["en"] in html and 'href="/privacy/revisions/2017-06-15"' in html
    earlier = client.get("/privacy/revisions/2017-06-15")
    assert earlier.status_code == 200
    assert "Smart Protect collects, accesses and uses" in earlier.text
    assert "until a newer one was posted" in earlier.text
    assert client.get("/privacy/revisions/1999").status_code == 404


def test_a_new_revision_is_put_to_the_user_on_their_next_visit(
    signed_in, session_factory, clock, keyring, db
):
    client = signed_in
    _publish_new(session_factory, clock, keyring)
    response = client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/privacy/review?next=/account"
    page = client.get("/privacy/review?next=/account")
    assert NEW_TEXTS["en"] in page.text
    token = form_page(client, "/privacy/review")
    response = client.post(
        "/privacy/review", data={"csrf_token": token, "decision": "accept", "next": "/account"}
    )
    assert response.headers["location"] == "/account"
    assert client.get("/account").status_code == 200
    user = db.scalar(select(User))
    assert policy.status(session=db, subject_id=user.id) is policy.Status.ACCEPTED


def test_declining_explains_clause_8_3_and_offers_to_close_the_account(
    signed_in, session_factory, clock, keyring, db, deliver, mailbox
):
    client = signed_in
    _publish_new(session_factory, clock, keyring)
    token = form_page(client, "/privacy/review")
    page = client.post("/privacy/review", data={"csrf_token": token, "decision": "decline"})
    assert page.status_code == 200
    assert "clause 8.3" in page.text and "Close my account" in page.text
    user_id = db.scalar(select(User.id))
    assert policy.status(session=db, subject_id=user_id) is policy.Status.DECLINED

    response = client.post("/account/close", data={"csrf_token": token, "password": "wrong"})
    assert response.status_code == 422 and db.scalar(select(func.count()).select_from(User)) == 1
    response = client.post("/account/close", data={"csrf_token": token, "password": PASSWORD})
    assert response.status_code == 200 and "Your account is closed" in response.text
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(User)) == 0
    assert db.get(SubjectKey, user_id).wrapped_key is None  # crypto-shredded
    tags = db.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert tags[-2:] == ["account:user:close", "privacy:key:destroy"]
    # The pseudonymous ledger stays as evidence, but sealed parts are unreadable now.
    assert db.scalar(select(func.count()).select_from(ConsentEvent)) > 0
    assert login_via_web(client, EMAIL).status_code == 401


def test_the_consents_page_shows_each_consent_and_changes_optional_ones_in_one_click(signed_in, db):
    client = signed_in
    html = client.get("/account/privacy").text
    for purpose in Purpose:
        # Device permissions are given per device, on that device's page.
        shown = f'id="consent-{purpose.value}"' in html
        assert shown == (purpose not in PER_DEVICE), purpose
    assert "LLP “Smart Service Group” (Smart Protect)" in html
    assert EMAIL in html  # the subject the consents are about
    assert "condition of the service" in html  # required ones cannot be toggled
    token = form_page(client, "/account/privacy")

    # Granting and withdrawing are the same single step.
    response = client.post(
        "/account/privacy/consents/marketing_sms",
        data={"csrf_token": token, "granted": "1"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "<html" not in response.text
    assert "Withdraw consent" in response.text
    response = client.post(
        "/account/privacy/consents/marketing_sms",
        data={"csrf_token": token, "granted": "0"},
        headers={"HX-Request": "true"},
    )
    assert "Give consent" in response.text
    user_id = db.scalar(select(User.id))
    actions = db.scalars(
        select(ConsentEvent.action)
        .where(ConsentEvent.subject_id == user_id, ConsentEvent.purpose == Purpose.MARKETING_SMS)
        .order_by(ConsentEvent.id)
    ).all()
    assert [a.value for a in actions] == ["withdraw", "grant", "withdraw"]
    assert "History" in client.get("/account/privacy").text

    # Without htmx, the form posts and comes back to the page.
    response = client.post(
        "/account/privacy/consents/analytics_cookies", data={"csrf_token": token, "granted": "1"}
    )
    assert response.status_code == 303
    assert (
        client.post(
            "/account/privacy/consents/processing_and_storage",
            data={"csrf_token": token, "granted": "0"},
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/account/privacy/consents/no_such_purpose", data={"csrf_token": token, "granted": "1"}
        ).status_code
        == 404
    )


def test_the_consents_page_in_russian(signed_in):
    html = signed_in.get("/ru/account/privacy").text
    _ = translations("ru").gettext
    assert _("Analytics cookies (clause 2.2)") in html
    assert _("Withdraw consent") in html or _("Give consent") in html
