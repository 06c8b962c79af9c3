"""Erasure (clause 7.1): the whole account goes, nothing readable stays behind, and only what
a legal hold obliges is kept, sealed with the hold's own key."""

from __future__ import annotations

import glob
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartprotect.accounts import service as accounts
from smartprotect.accounts.models import LoginAttempt, User
from smartprotect.accounts.service import throttle_account_key
from smartprotect.commands import service as commands
from smartprotect.commands.models import Command, Kind
from smartprotect.db import KEYRING
from smartprotect.devices import service as devices
from smartprotect.devices.models import Device, DeviceLocation
from smartprotect.devices.schemas import CheckIn, LocationFix
from smartprotect.errors import ValidationFailed
from smartprotect.mail.links import Links
from smartprotect.mail.models import OutboxMessage
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.keys.master import Keyring, LocalMasterKey, MasterKeyError
from smartprotect.privacy.keys.models import SubjectKey
from smartprotect.privacy.retention import service as retention
from smartprotect.privacy.retention.job import run_retention
from smartprotect.privacy.retention.models import HeldRecord
from smartprotect.privacy.retention.rules import Category
from smartprotect.privacy.rights import erasure
from smartprotect.profile.models import ProfileItem
from tests.conftest import TEST_SECRET
from tests.helpers import PASSWORD, add_device, add_owner, form_page
from tests.privacy.rights.test_export import _arrange

EMAIL = "aigerim@example.kz"


@pytest.fixture
def aigerim(db, clock, keyring, published_policy):
    user = _arrange(db, clock, keyring, EMAIL, 43.2389)
    db.add(LoginAttempt(account_key=throttle_account_key(secret=keyring.secret, email=EMAIL),
                        client_key="c" * 64, attempted_at=clock.now()))  # fmt: skip
    db.commit()
    return user


def _count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_erasure_removes_every_row_and_the_key(db, clock, keyring, aigerim):
    user_id = aigerim.id
    report = erasure.erase_account(session=db, keyring=keyring, user=aigerim, clock=clock)
    db.commit()
    assert report.kept == []
    for model in (User, Device, DeviceLocation, Command, ProfileItem, LoginAttempt):
        assert _count(db, model) == 0, model
    assert not keys.key_exists(session=db, subject_id=user_id)


def test_a_backup_from_before_the_erasure_opens_no_more_once_its_master_key_is_retired(
    db, clock, keyring, aigerim
):
    """Erasure destroys the data key in the database; a backup taken before it still holds
    the key, wrapped by the master key. Rotating the master key, and destroying the old one
    once no backup under it is kept, makes that copy unreadable, while live data stays."""
    other = add_owner(db, clock=clock, keyring=keyring, email="daniyar@example.kz")
    db.commit()
    # What a backup taken now holds of Aigerim: her wrapped key and her sealed address.
    backup_key = db.scalar(select(SubjectKey.wrapped_key).where(
        SubjectKey.subject_id == aigerim.id))  # fmt: skip
    backup_address, user_id = aigerim.email_sealed, aigerim.id
    erasure.erase_account(session=db, keyring=keyring, user=aigerim, clock=clock)
    db.commit()

    def opened(master) -> str:
        cipher = keys.unwrap_key(master, wrapped=backup_key, subject_id=user_id)
        return keys.open_with(cipher, table="users", column="email", row_id=user_id,
                              ciphertext=backup_address)  # fmt: skip

    assert opened(keyring.master) == EMAIL  # the reason to retire the master key
    retired, current = keyring.master, LocalMasterKey(bytes(range(32, 64)))
    assert keys.rewrap_all(session=db, old=retired, new=current) == 1  # Daniyar's
    db.commit()
    with pytest.raises(MasterKeyError):
        opened(current)
    # Live data opens with the new master key.
    fresh = db.get_bind()
    with Session(fresh, info={KEYRING: Keyring(master=current, secret=keyring.secret)}) as later:
        assert later.get(User, other.id).email == "daniyar@example.kz"


def test_the_password_confirms_it(db, clock, keyring, aigerim):
    with pytest.raises(ValidationFailed):
        erasure.close_account(session=db, keyring=keyring, user=aigerim, password="nope",
                              clock=clock)  # fmt: skip


def test_a_legal_hold_keeps_only_its_categories_until_it_ends(db, clock, keyring, aigerim):
    hold = retention.place_hold(
        session=db, clock=clock, secret=TEST_SECRET, subject_id=aigerim.id,
        categories=[Category.GEOLOCATION], reason="Investigation 6.2, case 77-1",
        ends_at=clock.now() + timedelta(days=30), placed_by="cli",
    )  # fmt: skip
    report = erasure.erase_account(session=db, keyring=keyring, user=aigerim, clock=clock)
    db.commit()
    (kept,) = report.kept
    assert kept.categories == ["geolocation"] and kept.reason == "Investigation 6.2, case 77-1"
    assert _count(db, User) == 0 and _count(db, DeviceLocation) == 0
    record = db.scalar(select(HeldRecord))
    opened = erasure.open_held_record(session=db, keyring=keyring, record=record)
    points = opened["locations"][0]["points"]
    assert points[0]["latitude"] == pytest.approx(43.2389)
    # Minimal and pseudonymous: nothing of the other categories, no name, no address.
    assert set(opened) == {"subject_id", "hold", "locations"}
    assert EMAIL.encode() not in record.sealed and b"43.23" not in record.sealed

    retention.release_hold(session=db, clock=clock, secret=TEST_SECRET, hold_id=hold.id,
                           released_by="cli")  # fmt: skip
    db.commit()
    from smartprotect.db import make_session_factory

    result = run_retention(session_factory=make_session_factory(db.get_bind()), clock=clock,
                           keyring=keyring, links=Links(base_url="https://testserver"))  # fmt: skip
    assert result.held_records_destroyed == 1
    db.expire_all()
    assert _count(db, HeldRecord) == 0
    assert not keys.key_exists(session=db, subject_id=hold.id)


def _database_bytes(engine, database_url: str) -> bytes:
    """Every file the database keeps the test's data in, as it is on disk now.

    PostgreSQL: the test database's own directory, the shared catalogs and every WAL
    segment, after a checkpoint has written out what is only in memory."""
    if engine.dialect.name == "sqlite":
        path = database_url.removeprefix("sqlite:///")
        return b"".join(Path(name).read_bytes() for name in sorted(glob.glob(path + "*")))
    with engine.connect() as connection:
        connection.exec_driver_sql("CHECKPOINT")
        data = Path(connection.exec_driver_sql("SHOW data_directory").scalar())
        oid = connection.exec_driver_sql(
            "SELECT oid FROM pg_database WHERE datname = current_database()").scalar()  # fmt: skip
    files = [*(data / "base" / str(oid)).iterdir(), *(data / "global").iterdir(),
             *(data / "pg_wal").iterdir()]  # fmt: skip
    return b"".join(f.read_bytes() for f in sorted(files) if f.is_file())


PERSONAL = ("aigerim@example.kz", "+77012345678", "Сейткали", "Айгерим", "Нурлановна",
            "N00043238", "43.2389", "76.9512", "Второй телефон", "Call me",
            "aigerim.home")  # fmt: skip


def test_after_erasure_no_personal_string_is_in_the_database_files(
    signed_in, db, clock, keyring, engine, database_url
):
    client = signed_in
    token = form_page(client, "/account/profile")
    client.post("/account/profile/passport", data={"csrf_token": token, "number": "N00043238",
                "authority": "МВД РК", "issued_on": "2019-05-17"})  # fmt: skip
    client.post("/account/profile/other", data={"csrf_token": token,
                                                "text": "Второй телефон у мамы"})  # fmt: skip
    user = accounts.get_by_email(session=db, email=EMAIL)
    phone = add_device(db, keyring=keyring, clock=clock, owner=user,
                       capabilities=("locate", "lock", "report_accounts"))  # fmt: skip
    fix = LocationFix(latitude=43.2389, longitude=76.9512, accuracy_m=10, method="gps",
                      fixed_at=clock.now())  # fmt: skip
    devices.check_in_many(session=db, keyring=keyring, clock=clock, reports=[devices.Report(
        credential_hash=phone.credential_hash,
        report=CheckIn(locations=[fix], accounts=["aigerim.home"]))])  # fmt: skip
    commands.issue(session=db, keyring=keyring, user=user, device=phone, kind=Kind.LOCK,
                   clock=clock, links=Links(base_url="https://testserver"),
                   message="Call me, please", phone="+77015550000")  # fmt: skip
    sealed_address = user.email_sealed
    db.commit()
    # The test can fail: all of it is held, and the owner can read it back.
    held = client.get("/account/privacy/export.json").content.decode()
    assert all(text in held for text in PERSONAL), held
    # Stored only sealed with the owner's key, even while the account lives: none of the
    # database's own copies (dead row versions, logs, statistics) can name them later.
    before = _database_bytes(engine, database_url)
    assert [text for text in PERSONAL if text.encode() in before] == []
    if engine.dialect.name == "sqlite":
        assert sealed_address in before

    response = client.post("/account/delete", data={"csrf_token": token, "password": PASSWORD})
    assert response.status_code == 200 and "nothing else of it is kept" in response.text
    after = _database_bytes(engine, database_url)
    assert [text for text in PERSONAL if text.encode() in after] == []
    if engine.dialect.name == "sqlite":
        # Not even the ciphertext: overwritten in place, and the log emptied.
        assert sealed_address not in after


def test_erasure_takes_the_accounts_mail_and_nobody_elses(db, clock, keyring, aigerim):
    from smartprotect.mail import service as mail

    other = add_owner(db, clock=clock, keyring=keyring, email="daniyar@example.kz")
    db.add(LoginAttempt(account_key=throttle_account_key(secret=keyring.secret,
                                                         email=other.email),
                        client_key="c" * 64, attempted_at=clock.now()))  # fmt: skip
    # Mail to an address the account had before, and to another account's address.
    mail.enqueue(session=db, recipient="old@example.kz", subject="s", body_text="b",
                 clock=clock, user_id=aigerim.id)  # fmt: skip
    mail.enqueue(session=db, recipient=other.email, subject="s", body_text="b", clock=clock,
                 user_id=other.id)  # fmt: skip
    # A pending address can be anyone's: naming another's must not reach their data.
    aigerim.pending_email = other.email
    db.commit()
    erasure.erase_account(session=db, keyring=keyring, user=aigerim, clock=clock)
    db.commit()
    assert [m.recipient for m in db.scalars(select(OutboxMessage))] == [other.email]
    assert _count(db, LoginAttempt) == 1  # the other account's throttle stands
