"""Linking a phone registered openly (no enrollment code) as a device of the signed-in user: the
browser logs in to its FMD account and sends only the access token, proof of the password."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from smartprotect.devices import service as devices
from smartprotect.devices.models import Device
from smartprotect.fmd import service as fmd
from smartprotect.fmd.models import FmdAccount, FmdSession
from smartprotect.privacy.consent.models import Channel, ConsentEvent
from tests.api.test_fmd_v1 import Phone
from tests.helpers import form_page


@pytest.fixture(scope="module")
def phone() -> Phone:
    return Phone()


@pytest.fixture
def open_registration() -> bool:
    return True


@pytest.fixture
def settings(settings, open_registration):
    return settings.model_copy(update={"fmd_open_registration": open_registration})


def _open_phone(client, phone, name="openpixel") -> str:
    """A phone registered with no code, and the access token its login gave."""
    assert client.put("/api/v1/device", json={
        "hashedPassword": phone.login_hash, "pubkey": phone.public, "privkey": phone.wrapped,
        "requestedUsername": name, "registrationToken": ""}).status_code == 200  # fmt: skip
    return _log_in(client, phone, name)


def _log_in(client, phone, name="openpixel") -> str:
    return client.put("/api/v1/requestAccess", json={
        "IDT": name, "Data": phone.login_hash}).json()["Data"]  # fmt: skip


def _link(client, token, **overrides):
    data = {"csrf_token": form_page(client, "/devices"), "fmd_id": "openpixel",
            "fmd_token": token, "link_device_name": "My Pixel", "link_capability_locate": "on",
            "link_capability_ring": "on"} | overrides  # fmt: skip
    return client.post("/devices/fmd-links", data=data)


def test_a_phone_of_nobody_becomes_a_device_of_the_user_who_signs_in_to_it(signed_in, phone, db):
    page = signed_in.get("/devices").text
    assert 'id="link-fmd"' in page and "the password is not sent to us" in page
    token = _open_phone(signed_in, phone)
    linked = _link(signed_in, token)
    assert linked.status_code == 303
    device = db.scalar(select(Device).where(Device.name == "My Pixel"))
    assert linked.headers["location"].endswith(f"/devices/{device.id}")
    assert sorted(device.capabilities) == ["locate", "ring"]
    assert db.scalar(select(FmdAccount.device_id)) == device.id
    # Each permission is a consent choice made on the site; the proof-of-password token ended.
    events = db.scalars(select(ConsentEvent).where(
        ConsentEvent.scope == devices.scope_of(device.id))).all()  # fmt: skip
    assert len(events) == len(devices.CAPABILITY_PURPOSE)
    assert {e.channel for e in events} == {Channel.WEB}
    assert db.scalar(select(func.count()).select_from(FmdSession)) == 0
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == Tag.FMD_LINKED))
    assert event.subject is not None and event.details == {"device": str(device.id)}
    # The phone goes on as before, now as that device.
    page = signed_in.get(f"/devices/{device.id}").text
    assert "data-fmd" in page


def test_a_wrong_token_a_linked_phone_or_a_bad_name_is_refused_and_changes_nothing(
    signed_in, phone, db
):
    token = _open_phone(signed_in, phone)
    for token_given, overrides in (("", {}), ("not-a-token", {}),
                                   (token, {"link_device_name": " "}),
                                   (token, {"csrf_token": "forged"})):  # fmt: skip
        refused = _link(signed_in, token_given, **overrides)
        assert refused.status_code in (403, 422)
        if refused.status_code == 422:
            assert 'aria-invalid="true"' in refused.text
    assert db.scalar(select(func.count()).select_from(Device)) == 0
    assert _link(signed_in, token).status_code == 303
    again = _log_in(signed_in, phone)
    refused = _link(signed_in, again, link_device_name="Second")
    assert refused.status_code == 422
    assert "already a device of a Smart Protect account" in refused.text
    assert db.scalar(select(func.count()).select_from(Device)) == 1


def test_only_a_fresh_login_proves_the_password(signed_in, phone, db, clock):
    # The phone's own token (a login it made earlier) is no proof the user knows it.
    token = _open_phone(signed_in, phone)
    clock.advance(fmd.LINK_PROOF_WINDOW + timedelta(seconds=1))
    refused = _link(signed_in, token)
    assert refused.status_code == 422 and "did not work" in refused.text
    assert db.scalar(select(func.count()).select_from(Device)) == 0
    assert _link(signed_in, _log_in(signed_in, phone)).status_code == 303


@pytest.mark.parametrize("open_registration", [False])
def test_without_open_registration_there_is_nothing_to_link(signed_in):
    assert 'id="link-fmd"' not in signed_in.get("/devices").text
