"""Marketing mail: only with consent, one-click unsubscribe (RFC 8058), effective at once."""

from __future__ import annotations

from sqlalchemy import select

from smartprotect.mail import marketing
from smartprotect.mail.links import Links
from smartprotect.mail.models import OutboxMessage, OutboxStatus
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import ConsentEvent, Purpose
from tests.conftest import body_of
from tests.helpers import form_page

EMAIL = "aigerim@example.kz"
TEXTS = {"en": ("Spring offer", "Protect a second phone for free."),
         "ru": ("Весеннее предложение", "Защитите второй телефон бесплатно.")}  # fmt: skip
LINKS = Links(base_url="https://testserver")


def _consenting_user(client, db, published_policy, mailbox, deliver):
    from tests.helpers import register_via_web

    register_via_web(client, published_policy["en"], marketing_email="on")
    deliver()
    from tests.conftest import link_in

    path = link_in(mailbox.last_to(EMAIL), "/verify-email/").removeprefix("https://testserver")
    client.post(path, data={"csrf_token": form_page(client, path)})
    mailbox.clear()
    from smartprotect.accounts.models import User

    return db.scalar(select(User))


def _campaign(session_factory, keyring, clock) -> int:
    queued, after = 0, None
    while True:  # a batch of one recipient at a time, as the CLI does with larger ones
        with session_factory() as session:
            count, after = marketing.send_campaign(session=session, keyring=keyring,
                                                   texts=TEXTS, clock=clock, links=LINKS,
                                                   after=after, limit=1)  # fmt: skip
            session.commit()
        queued += count
        if after is None:
            return queued


def test_a_mailing_carries_one_click_unsubscribe_and_it_works_without_a_session(
    client, app, db, session_factory, keyring, clock, published_policy, mailbox, deliver
):
    user = _consenting_user(client, db, published_policy, mailbox, deliver)
    assert _campaign(session_factory, keyring, clock) == 1
    deliver()
    message = mailbox.last_to(EMAIL)
    assert message["Subject"] == "Spring offer"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = message["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://testserver/en/unsubscribe/") and url in body_of(message)

    # A mail program's one-click POST: no cookies, no form token.
    from fastapi.testclient import TestClient

    stranger = TestClient(app, base_url="https://testserver")
    path = url.removeprefix("https://testserver")
    assert stranger.get(path).status_code == 200  # a GET (a scanner) changes nothing
    db.expire_all()
    assert consent.is_permitted(session=db, subject_id=user.id, purpose=Purpose.MARKETING_EMAIL)
    response = stranger.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    db.expire_all()
    assert not consent.is_permitted(session=db, subject_id=user.id,
                                    purpose=Purpose.MARKETING_EMAIL)  # fmt: skip
    event = db.scalars(select(ConsentEvent).order_by(ConsentEvent.id.desc())).first()
    assert event.channel.value == "email_link"
    # Twice is harmless; the next mailing skips them.
    assert stranger.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert _campaign(session_factory, keyring, clock) == 0


def test_withdrawal_stops_a_message_already_queued(
    client, db, session_factory, keyring, clock, published_policy, mailbox, deliver
):
    user = _consenting_user(client, db, published_policy, mailbox, deliver)
    assert _campaign(session_factory, keyring, clock) == 1
    token = marketing.unsubscribe_token(secret=keyring.secret, user_id=user.id)
    assert client.post(f"/unsubscribe/{token}").status_code == 200
    assert deliver() == 0
    assert mailbox.to(EMAIL) == []
    db.expire_all()
    status = select(OutboxMessage.status).where(OutboxMessage.kind == marketing.KIND)
    assert db.scalar(status) is OutboxStatus.CANCELLED


def test_forged_tokens_change_nothing(client, db, keyring, published_policy, mailbox, deliver):
    user = _consenting_user(client, db, published_policy, mailbox, deliver)
    good = marketing.unsubscribe_token(secret=keyring.secret, user_id=user.id)
    forged = good[:-1] + ("0" if good[-1] != "0" else "1")
    for token in (forged, "nonsense", f"{user.id.hex}.", "x.y"):
        assert client.post(f"/unsubscribe/{token}").status_code == 404
        assert client.get(f"/unsubscribe/{token}").status_code == 404
    db.expire_all()
    assert consent.is_permitted(session=db, subject_id=user.id, purpose=Purpose.MARKETING_EMAIL)


def test_without_consent_nothing_is_queued(
    client, db, session_factory, keyring, clock, published_policy, mailbox, deliver
):
    from tests.helpers import register_via_web

    register_via_web(client, published_policy["en"])  # the box left unticked
    assert _campaign(session_factory, keyring, clock) == 0


def test_the_cli_queues_a_mailing_in_each_language(
    client, db, database_url, tmp_path, published_policy, mailbox, deliver
):
    from tests.cli.test_cli import _invoke
    from tests.cli.test_keys_and_audit import _env

    _consenting_user(client, db, published_policy, mailbox, deliver)
    en, ru = tmp_path / "en.txt", tmp_path / "ru.txt"
    en.write_text("Spring offer\nProtect a second phone.", encoding="utf-8")
    ru.write_text("Весеннее предложение\nЗащитите второй телефон.", encoding="utf-8")
    result = _invoke(["mail", "send-marketing", "--en", str(en), "--ru", str(ru)],
                     _env(database_url, tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Queued 1 message(s)" in result.output
    db.expire_all()
    queued = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == marketing.KIND)).all()
    assert [m.subject for m in queued] == ["Spring offer"]
    assert queued[0].headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    refused = _invoke(["mail", "send-marketing", "--en", str(empty), "--ru", str(ru)],
                      _env(database_url, tmp_path))  # fmt: skip
    assert refused.exit_code != 0 and "subject on the first line" in refused.output
