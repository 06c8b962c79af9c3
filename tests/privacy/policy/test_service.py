"""Policy revisions (clauses 8.1-8.3): linked texts, newer versions only, answers recorded."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from smartprotect.accounts.models import User
from smartprotect.accounts.service import create_user
from smartprotect.errors import Conflict, ValidationFailed
from smartprotect.mail.links import Links
from smartprotect.mail.models import OutboxMessage
from smartprotect.privacy.consent.models import Channel
from smartprotect.privacy.policy import service as policy

TEXTS = {"en": "Policy text\n", "ru": "Текст политики\n"}


def _publish(db, keyring, clock, version, texts=TEXTS, **kwargs):
    return policy.publish_revision(
        session=db, keyring=keyring, version=version, texts=texts, clock=clock, **kwargs
    )


def test_a_revision_links_both_texts_with_their_sha256(db, clock, keyring):
    revision, created = _publish(db, keyring, clock, "2017-06-15")
    assert created
    assert revision.revision_date == date(2017, 6, 15)
    assert revision.published_at == clock.now()
    by_language = {d.language: d for d in revision.documents}
    assert set(by_language) == {"en", "ru"}
    assert by_language["ru"].sha256 == hashlib.sha256("Текст политики\n".encode()).hexdigest()
    assert policy.document_in_force(session=db, language="ru").text == TEXTS["ru"]


@pytest.mark.parametrize("texts", [{"en": "only English"}, {"en": "x", "ru": "  "}, {}])
def test_a_revision_needs_every_language(db, clock, keyring, texts):
    with pytest.raises(ValidationFailed) as error:
        _publish(db, keyring, clock, "1", texts=texts)
    assert "texts" in error.value.errors


@pytest.mark.parametrize("version", ["", "v2", "2017/06/15", "1..2", "x" * 65])
def test_versions_must_be_numbers(db, clock, keyring, version):
    with pytest.raises(ValidationFailed) as error:
        _publish(db, keyring, clock, version)
    assert "version" in error.value.errors


def test_a_new_revision_must_be_newer_than_the_one_in_force(db, clock, keyring):
    _publish(db, keyring, clock, "2017-06-15")
    for older in ("2017-06-14", "2016-12-31", "2017-6-15"):
        with pytest.raises(ValidationFailed) as error:
            _publish(db, keyring, clock, older, texts={"en": "a", "ru": "б"})
        assert "newer" in error.value.errors["version"]
    clock.advance(timedelta(days=1))
    revision, _ = _publish(db, keyring, clock, "2026-11-26", texts={"en": "a", "ru": "б"})
    assert policy.in_force(session=db).id == revision.id
    assert [r.version for r in policy.revisions(session=db)] == ["2026-11-26", "2017-06-15"]


def test_published_text_cannot_be_changed(db, clock, keyring):
    _publish(db, keyring, clock, "1")
    _same, created = _publish(db, keyring, clock, "1")
    assert not created
    with pytest.raises(Conflict):
        _publish(db, keyring, clock, "1", texts={"en": "other", "ru": TEXTS["ru"]})


def _user(db, clock, keyring) -> User:
    user = create_user(
        session=db, keyring=keyring, clock=clock,
        email=f"{uuid.uuid4().hex[:8]}@example.kz", phone="+77010000000", password_hash="x",
        language="ru", created_at=clock.now(), password_changed_at=clock.now(),
    )  # fmt: skip
    return user


def test_answers_and_who_has_not_accepted(db, clock, keyring):
    first, _ = _publish(db, keyring, clock, "1")
    alice, bob, carol = (_user(db, clock, keyring) for _ in range(3))
    for user in (alice, bob):
        policy.record_acceptance(
            session=db, keyring=keyring, subject_id=user.id,
            document=policy.document_of(first, "en"), channel=Channel.WEB, actor="t", clock=clock,
        )  # fmt: skip
    assert policy.status(session=db, subject_id=alice.id) is policy.Status.ACCEPTED
    assert policy.status(session=db, subject_id=carol.id) is policy.Status.PENDING

    clock.advance(timedelta(days=1))
    second, _ = _publish(db, keyring, clock, "2", texts={"en": "two", "ru": "два"})
    # A new revision: nobody has accepted it yet.
    waiting = db.scalars(policy.not_accepted(session=db, subject_ids=select(User.id))).all()
    assert set(waiting) == {alice.id, bob.id, carol.id}
    policy.record_acceptance(
        session=db, keyring=keyring, subject_id=alice.id,
        document=policy.document_of(second, "ru"), channel=Channel.WEB, actor="t", clock=clock,
    )  # fmt: skip
    policy.record_decline(
        session=db, keyring=keyring, subject_id=bob.id,
        document=policy.document_of(second, "en"), channel=Channel.WEB, actor="t", clock=clock,
    )  # fmt: skip
    assert policy.status(session=db, subject_id=bob.id) is policy.Status.DECLINED
    waiting = db.scalars(policy.not_accepted(session=db, subject_ids=select(User.id))).all()
    assert set(waiting) == {bob.id, carol.id}
    # Changing one's mind: accepting after declining.
    clock.advance(timedelta(minutes=5))
    policy.record_acceptance(
        session=db, keyring=keyring, subject_id=bob.id,
        document=policy.document_of(second, "en"), channel=Channel.WEB, actor="t", clock=clock,
    )  # fmt: skip
    assert policy.status(session=db, subject_id=bob.id) is policy.Status.ACCEPTED


def test_every_user_is_mailed_in_their_language(db, clock, keyring):
    first, _ = _publish(db, keyring, clock, "1")
    users = [_user(db, clock, keyring) for _ in range(3)]
    sent = policy.notify_users(
        session=db, revision=first, clock=clock, links=Links(base_url="https://smprotect.com")
    )
    assert sent == 3
    messages = db.scalars(select(OutboxMessage)).all()
    assert {m.recipient for m in messages} == {u.email for u in users}
    assert all("https://smprotect.com/ru/privacy/review" in m.body_text for m in messages)
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 3
