"""Access (clause 5.4): the export holds every category, validates against its published
schema, and holds nothing of anyone else."""

from __future__ import annotations

import json
from datetime import date

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select

from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from smartprotect.commands import service as commands
from smartprotect.commands.models import Kind
from smartprotect.mail.links import Links
from smartprotect.privacy.consent.models import Channel
from smartprotect.privacy.policy import service as policy
from smartprotect.privacy.policy.models import PolicyDocument
from smartprotect.privacy.rights import export
from smartprotect.privacy.rights.schema import EXPORT_SCHEMA
from smartprotect.profile import service as profile
from smartprotect.profile.schemas import NamesUpdate, PassportUpdate
from tests.helpers import add_device, add_owner, report_fix


def _arrange(db, clock, keyring, email, latitude):
    user = add_owner(db, clock=clock, keyring=keyring, email=email)
    profile.change_names(session=db, keyring=keyring, user=user, clock=clock,
                         names=NamesUpdate(last_name="Сейткали", first_name="Айгерим"))  # fmt: skip
    passport = PassportUpdate(number=f"N{int(latitude * 1000):08d}", authority="МВД РК",
                              issued_on=date(2019, 5, 17))  # fmt: skip
    profile.set_passport(session=db, keyring=keyring, user=user, clock=clock, passport=passport)
    profile.set_other_information(session=db, keyring=keyring, user=user, clock=clock,
                                  text=f"note of {email}")  # fmt: skip
    document = db.scalar(select(PolicyDocument).where(PolicyDocument.language == "ru"))
    policy.record_acceptance(session=db, keyring=keyring, subject_id=user.id, document=document,
                             channel=Channel.WEB, actor="user", clock=clock)  # fmt: skip
    phone = add_device(db, keyring=keyring, clock=clock, owner=user,
                       capabilities=("locate", "lock"))  # fmt: skip
    report_fix(db, keyring=keyring, clock=clock, device=phone, latitude=latitude)
    commands.issue(session=db, keyring=keyring, user=user, device=phone, kind=Kind.LOCK,
                   clock=clock, links=Links(base_url="https://testserver"),
                   message=f"Call me, {email}", phone="+77015550000")  # fmt: skip
    db.flush()
    return user


@pytest.fixture
def two_users(db, clock, keyring, published_policy):
    return (_arrange(db, clock, keyring, "aigerim@example.kz", 43.2389),
            _arrange(db, clock, keyring, "daniyar@example.kz", 51.1605))  # fmt: skip


def _export(db, keyring, user, clock) -> tuple[str, dict]:
    text = "".join(
        export.stream_json(
            export.document(session=db, keyring=keyring, user=user, now=clock.now()), chunk_size=100
        )
    )
    return text, json.loads(text)  # fmt: skip


def test_the_export_holds_every_category_and_validates_against_its_schema(
    db, clock, keyring, two_users
):
    aigerim, _ = two_users
    _, data = _export(db, keyring, aigerim, clock)
    Draft202012Validator.check_schema(EXPORT_SCHEMA)
    Draft202012Validator(EXPORT_SCHEMA).validate(data)
    assert data["account"]["email"] == "aigerim@example.kz"
    assert data["profile"]["last_name"] == "Сейткали"
    assert data["profile"]["passport"]["number"] == "N00043238"  # in full: it is their copy
    assert data["profile"]["other_information"] == "note of aigerim@example.kz"
    assert {e["purpose"] for e in data["consents"]["history"]} >= {"device_locate"}
    assert [a["answer"] for a in data["policy_answers"]] == ["accepted"]
    (device,) = data["devices"]
    assert device["locations"][0]["latitude"] == pytest.approx(43.2389)
    assert device["commands"][0]["parameters"]["message"] == "Call me, aigerim@example.kz"
    assert {e["action"] for e in data["audit_events"]} >= {Tag.PROFILE_CHANGED, Tag.COMMAND_ISSUED}
    assert data["technical"]["enrollment_codes"][0]["device_name"] == "Phone"
    assert set(data) == set(EXPORT_SCHEMA["required"])


def test_an_export_holds_nothing_of_another_user(db, clock, keyring, two_users):
    aigerim, daniyar = two_users
    text, _ = _export(db, keyring, aigerim, clock)
    for theirs in ("daniyar@example.kz", "51.16", "N00051160"):
        assert theirs not in text
    text, _ = _export(db, keyring, daniyar, clock)
    for theirs in ("aigerim@example.kz", "43.23", "N00043238"):
        assert theirs not in text


def test_the_json_is_streamed_in_chunks(db, clock, keyring, two_users):
    aigerim, _ = two_users
    doc = export.document(session=db, keyring=keyring, user=aigerim, now=clock.now())
    chunks = list(export.stream_json(doc, chunk_size=256))
    assert len(chunks) > 5 and all(len(c) < 256 * 4 for c in chunks[:-1])
    assert not db.scalar(select(AuditEvent).where(AuditEvent.action == Tag.PRIVACY_EXPORTED))
