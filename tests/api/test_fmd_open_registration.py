"""Open registration: only when the operator turns it on may a phone register an FMD account
of no Smart Protect user, as on a plain FMD server; such an account works in both protocols,
is audited by pseudonym, goes when its phone deletes it, and is kept a year after its phone
last logged in."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from smartprotect.devices.models import Device
from smartprotect.fmd import service as fmd
from smartprotect.fmd.models import FmdAccount, FmdItem
from smartprotect.mail.links import Links
from smartprotect.privacy.retention.job import run_retention
from tests.api import test_fmd_v2 as v2
from tests.api.test_fmd_v1 import Phone, _code, _log_in, _post, _put, _register
from tests.helpers import add_owner

OPERATOR_TOKEN = "our-open-fmd-token"


@pytest.fixture
def operator_token() -> str | None:
    """The registration token the operator set for open registration; None: any."""
    return None


@pytest.fixture
def settings(settings, operator_token):
    return settings.model_copy(update={
        "fmd_open_registration": True,
        "fmd_open_registration_token": SecretStr(operator_token) if operator_token else None,
    })  # fmt: skip


@pytest.fixture
def phone() -> Phone:
    return Phone()


@pytest.fixture(scope="module")
def keys() -> v2.V2Keys:
    return v2.new_keys()


@pytest.fixture
def owner(db, clock, keyring, published_policy):
    user = add_owner(db, clock=clock, keyring=keyring)
    db.commit()
    return user


def _count(db, model) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


def test_a_phone_registers_an_account_of_nobody_that_works_as_on_fmd_servers(
    client, db, phone, owner, clock, keyring
):
    assert _register(client, phone, "", username="openphone").status_code == 200
    account = db.scalar(select(FmdAccount).where(FmdAccount.username == "openphone"))
    assert account.device_id is None and _count(db, Device) == 0
    token = _log_in(client, phone, username="openphone")
    location = json.dumps({"lat": 43.25, "lon": 76.95}).encode()
    assert (
        _post(client, "/location", {"IDT": token, "Data": phone.encrypt(location)}).status_code
        == 200
    )
    latest = _put(client, "/location", {"IDT": token, "Data": "-1"}).json()["Data"]
    assert phone.decrypt(latest) == location
    signature = base64.b64encode(b"sig").decode()
    assert _post(client, "/command", {"IDT": token, "Data": "ring", "UnixTime": 1,
                                      "CmdSig": signature}).status_code == 200  # fmt: skip
    assert _put(client, "/command", {"IDT": token, "Data": ""}).json()["Data"] == "ring"

    # Audited under the account's pseudonym, of no Smart Protect user.
    tags = [Tag.FMD_REGISTERED_OPEN, Tag.FMD_COMMAND_RECEIVED]
    events = db.scalars(select(AuditEvent).where(AuditEvent.action.in_(tags))
                        .order_by(AuditEvent.seq)).all()  # fmt: skip
    assert [e.action for e in events] == [Tag.FMD_REGISTERED_OPEN, Tag.FMD_COMMAND_RECEIVED]
    assert all(e.subject is None and e.actor.startswith("fmd:") for e in events)
    assert "openphone" not in json.dumps([e.details for e in events])

    # An enrollment code still makes the phone a device of its owner.
    assert _register(client, phone, _code(db, keyring, clock, owner),
                     username="ownedphone").status_code == 200  # fmt: skip
    owned = db.scalar(select(FmdAccount).where(FmdAccount.username == "ownedphone"))
    assert db.get(Device, owned.device_id).user_id == owner.id

    # The phone deletes its account: it goes with everything of it.
    assert _post(client, "/device", {"IDT": token, "Data": ""}).status_code == 200
    db.expire_all()
    assert db.scalar(select(FmdAccount).where(FmdAccount.username == "openphone")) is None
    assert _count(db, FmdItem) == 0 and _count(db, FmdAccount) == 1


def test_a_mistyped_or_used_enrollment_code_is_still_refused(client, db, phone, owner, clock,
                                                              keyring):  # fmt: skip
    code = _code(db, keyring, clock, owner)
    assert _register(client, phone, code, username="first").status_code == 200
    # Its user meant the phone to be theirs: never an account of nobody instead.
    for token in (
        code,
        "ABCD-EFGH-JKMN",
        "abcdefghjkmn",
        "ABCD-EFGH-JKM",
        "ABCDEFGHJKMNP",
        "ABCD EFGH JKM0",
        code.replace("-", "")[:-1] + "O",
    ):
        assert _register(client, phone, token, username="second").status_code == 401
    assert _count(db, FmdAccount) == 1


@pytest.mark.parametrize("operator_token", [OPERATOR_TOKEN, "OPEN-FMD-2026"])
def test_with_an_operators_token_only_that_token_opens_registration(client, db, phone,
                                                                     operator_token):  # fmt: skip
    for token in ("", "another-token", operator_token + "x"):
        assert _register(client, phone, token, username="open").status_code == 401
    assert _count(db, FmdAccount) == 0
    assert _register(client, phone, operator_token, username="open").status_code == 200
    assert db.scalar(select(FmdAccount.device_id)) is None


def test_one_client_cannot_register_accounts_without_end(client, db, phone):
    for n in range(fmd.MAX_FAILURES_PER_CLIENT):
        assert _register(client, phone, "", username=f"open{n}").status_code == 200
    refused = _register(client, phone, "", username="onemore")
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert _count(db, FmdAccount) == fmd.MAX_FAILURES_PER_CLIENT


def test_a_v2_client_registers_openly_and_stores_items(client, db, keys):
    token = v2._register(client, keys, "")
    account = db.scalar(select(FmdAccount))
    assert account.device_id is None and account.protocol_version == 2
    item = v2._item(keys, "location", b'{"lat": 1, "lon": 2}')
    assert client.post(f"{v2.API}/data/location", json={"items": [item]},
                       headers=v2._bearer(token)).status_code == 200  # fmt: skip
    listed = client.get(f"{v2.API}/data/location", headers=v2._bearer(token)).json()["items"]
    assert listed == [item]
    assert client.delete(f"{v2.API}/account", headers=v2._bearer(token)).status_code == 200
    assert _count(db, FmdAccount) == 0 and _count(db, FmdItem) == 0


def test_an_account_of_nobody_is_kept_a_year_after_its_phone_last_logged_in(
    client, db, phone, owner, clock, keyring, session_factory
):
    for name in ("idle", "active"):
        assert _register(client, phone, "", username=name).status_code == 200
        token = _log_in(client, phone, username=name)
        _post(client, "/location", {"IDT": token, "Data": phone.encrypt(b"{}")})
    assert _register(client, phone, _code(db, keyring, clock, owner),
                     username="owned").status_code == 200  # fmt: skip
    clock.advance(timedelta(days=200))
    _log_in(client, phone, username="active")  # the phone signs in again: provided anew
    clock.advance(timedelta(days=166))
    run_retention(session_factory=session_factory, clock=clock, keyring=keyring,
                  links=Links(base_url="https://testserver"))  # fmt: skip
    db.expire_all()
    # The idle one went, with everything of it; a device's account lives with the device.
    assert set(db.scalars(select(FmdAccount.username))) == {"active", "owned"}
