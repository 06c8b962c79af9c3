"""Policy revisions: immutable, hashed, and the latest one is in force."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from smartprotect.errors import Conflict, ValidationFailed
from smartprotect.privacy.policy import service as policy


def test_publishing_keeps_the_text_and_its_sha256(db, clock):
    document, created = policy.publish(
        session=db, version="2017-06-15", language="en", text="Policy text\n", clock=clock
    )
    assert created
    assert document.sha256 == hashlib.sha256(b"Policy text\n").hexdigest()
    assert document.published_at == clock.now()


def test_published_text_cannot_be_changed(db, clock):
    policy.publish(session=db, version="1", language="en", text="A", clock=clock)
    _same, created = policy.publish(session=db, version="1", language="en", text="A", clock=clock)
    assert not created
    with pytest.raises(Conflict):
        policy.publish(session=db, version="1", language="en", text="B", clock=clock)


@pytest.mark.parametrize(
    ("version", "language", "text", "field"),
    [("", "en", "x", "version"), ("1", "de", "x", "language"), ("1", "en", "  ", "text")],
)
def test_bad_revisions_are_refused(db, clock, version, language, text, field):
    with pytest.raises(ValidationFailed) as error:
        policy.publish(session=db, version=version, language=language, text=text, clock=clock)
    assert field in error.value.errors


def test_the_latest_revision_is_in_force_in_the_readers_language(db, clock):
    assert policy.in_force(session=db, language="en") is None
    policy.publish(session=db, version="1", language="en", text="one", clock=clock)
    policy.publish(session=db, version="1", language="ru", text="один", clock=clock)
    clock.advance(timedelta(days=30))
    policy.publish(session=db, version="2", language="en", text="two", clock=clock)

    assert policy.in_force(session=db, language="en").text == "two"
    # Revision 2 has no Russian text yet: Russian readers see the English one in force.
    assert policy.in_force(session=db, language="ru").version == "2"
    clock.advance(timedelta(minutes=1))
    policy.publish(session=db, version="2", language="ru", text="два", clock=clock)
    assert policy.in_force(session=db, language="ru").text == "два"
    assert policy.in_force(session=db, language="en").text == "two"
