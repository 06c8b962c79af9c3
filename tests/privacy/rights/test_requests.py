"""Rights requests made by email (clauses 7.1, 7.2): recorded by an operator, done only once
the account's owner confirms them through a link mailed to the account's own address."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from smartprotect.accounts import service as accounts
from smartprotect.accounts.models import User
from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from smartprotect.mail.links import Links
from smartprotect.mail.models import OutboxMessage
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import Channel, Purpose
from smartprotect.privacy.policy import service as policy
from smartprotect.privacy.rights import requests
from smartprotect.privacy.rights.requests import Action
from tests.cli.test_cli import _invoke
from tests.cli.test_keys_and_audit import _env
from tests.conftest import link_in
from tests.helpers import form_page
from tests.web.conftest import EMAIL

LINKS = Links(base_url="https://testserver")
PROFILE = "/account/profile"


def _receive(db, keyring, clock, action: Action, email: str = EMAIL) -> bool:
    found = requests.receive(session=db, keyring=keyring, email=email, action=action,
                             ticket="T-42", operator="cli", clock=clock, links=LINKS)  # fmt: skip
    db.commit()
    return found


def _link(deliver, mailbox) -> str:
    deliver()
    message = mailbox.last_to(EMAIL)
    assert message["Subject"] == "Confirm your request to Smart Protect"
    return link_in(message, "/rights/").removeprefix("https://testserver")


def _confirm(client, path, page=None):
    """Press the link page's button (with the form token of `page`, where the link's own
    page is gone)."""
    return client.post(path, data={"csrf_token": form_page(client, page or path)})


def test_an_erasure_asked_by_email_happens_only_when_the_owner_confirms(
    signed_in, client, db, clock, keyring, deliver, mailbox, database_url, tmp_path
):
    # The operator records the request from the command line. It keeps real time, the test
    # a frozen clock of its own: the mail it queued is made due now.
    env = _env(database_url, tmp_path, SMARTPROTECT_BASE_URL="https://testserver")
    result = _invoke(["rights", "request", "erase", "--email", EMAIL, "--ticket", "T-42"], env)
    db.execute(update(OutboxMessage).values(next_attempt_at=clock.now()))
    db.commit()
    assert result.exit_code == 0, result.output
    assert "nothing happens until they do" in result.output
    path = _link(deliver, mailbox)
    # Opening the link (as a mail scanner would) changes nothing.
    for _ in range(2):
        page = client.get(path)
        assert page.status_code == 200 and "Delete my account and all of my data." in page.text
    assert db.scalar(select(func.count()).select_from(User)) == 1

    closed = _confirm(client, path)
    assert closed.status_code == 200
    assert "nothing else of it is kept" in closed.text
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(User)) == 0
    actions = list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
    assert actions.index(Tag.PRIVACY_REQUEST_RECEIVED) < actions.index(
        Tag.PRIVACY_REQUEST_CONFIRMED) < actions.index(Tag.ACCOUNT_CLOSED)  # fmt: skip
    # The link worked once.
    assert client.get(path).status_code == 404
    assert _confirm(client, path, "/login").status_code == 404


def test_an_export_asked_by_email_is_downloaded_through_the_link(
    signed_in, client, db, clock, keyring, deliver, mailbox
):
    assert _receive(db, keyring, clock, Action.EXPORT)
    path = _link(deliver, mailbox)
    client.cookies.clear()  # not signed in: the link alone authorises it
    response = _confirm(client, path)
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    assert json.loads(response.content)["account"]["email"] == EMAIL
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == Tag.PRIVACY_EXPORTED)) == 1  # fmt: skip
    assert _confirm(client, path, "/login").status_code == 404


def test_marketing_consent_withdrawn_by_email(signed_in, client, db, clock, keyring, deliver,
                                              mailbox):  # fmt: skip
    user = accounts.get_by_email(session=db, email=EMAIL)
    document = policy.document_of(policy.in_force(session=db), user.language)
    consent.change(session=db, keyring=keyring, subject_id=user.id,
                   purpose=Purpose.MARKETING_EMAIL, granted=True,
                   policy_document_id=document.id, channel=Channel.WEB, actor="user",
                   clock=clock)  # fmt: skip
    assert consent.current_state(session=db, subject_id=user.id)[Purpose.MARKETING_EMAIL]
    assert _receive(db, keyring, clock, Action.WITHDRAW_MARKETING)
    response = _confirm(client, _link(deliver, mailbox))
    assert response.status_code == 200 and "no more newsletters" in response.text
    db.expire_all()
    assert not consent.current_state(session=db, subject_id=user.id)[Purpose.MARKETING_EMAIL]


def test_an_unknown_address_or_a_stale_link_does_nothing(
    signed_in, client, db, clock, keyring, deliver, mailbox, database_url, tmp_path
):
    result = _invoke(["rights", "request", "erase", "--email", "nobody@example.kz",
                      "--ticket", "T-1"], _env(database_url, tmp_path))  # fmt: skip
    assert result.exit_code == 1 and "no account has this address" in result.output
    assert not _receive(db, keyring, clock, Action.ERASE, email="nobody@example.kz")
    assert _receive(db, keyring, clock, Action.ERASE)
    path = _link(deliver, mailbox)
    clock.advance(requests.REQUEST_TTL + timedelta(seconds=1))
    assert client.get(path).status_code == 404
    assert _confirm(client, path, PROFILE).status_code == 404
    assert _confirm(client, "/rights/not-a-token", PROFILE).status_code == 404
    assert db.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.parametrize("action", list(Action))
def test_every_action_is_described_in_the_mail_and_on_the_page(
    signed_in, client, db, clock, keyring, deliver, mailbox, action
):
    assert _receive(db, keyring, clock, action)
    path = _link(deliver, mailbox)
    text = str(mailbox.last_to(EMAIL))
    page = client.get(path).text
    phrase = {
        Action.ERASE: "Delete my account and all of my data.",
        Action.EXPORT: "Give me everything you hold about me.",
        Action.WITHDRAW_MARKETING: "Stop sending me newsletters and promotional materials.",
    }[action]
    assert phrase in page and "Confirm" in page
    assert "T-42" in text
