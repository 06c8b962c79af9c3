"""Per-subject data keys: envelope encryption, binding to place, rotation, crypto-shredding."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from smartprotect.config import Environment
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.keys.master import (
    Keyring,
    LocalMasterKey,
    MasterKeyError,
    create_key_file,
    decode_key,
    from_settings,
    read_key_file,
)
from smartprotect.privacy.keys.models import SubjectKey

PASSPORT = "N12345678"


@pytest.fixture
def master() -> LocalMasterKey:
    return LocalMasterKey(os.urandom(32))


def _seal(db, master, subject_id, *, row_id="row-1", column="passport_number", text=PASSPORT):
    return keys.encrypt_field(
        session=db, master=master, subject_id=subject_id, table="profiles", column=column,
        row_id=row_id, plaintext=text,
    )  # fmt: skip


def _open(db, master, subject_id, ciphertext, *, row_id="row-1", column="passport_number"):
    return keys.decrypt_field(
        session=db, master=master, subject_id=subject_id, table="profiles", column=column,
        row_id=row_id, ciphertext=ciphertext,
    )  # fmt: skip


def test_each_subject_gets_a_random_256_bit_key_stored_only_wrapped(db, clock, master):
    first, second = uuid.uuid4(), uuid.uuid4()
    keys.create_key(session=db, master=master, subject_id=first, clock=clock)
    keys.create_key(session=db, master=master, subject_id=second, clock=clock)
    db.commit()
    rows = db.scalars(select(SubjectKey)).all()
    assert len({row.wrapped_key for row in rows}) == 2
    for row in rows:
        # nonce (12) + 32-byte key + GCM tag (16): the key itself is never stored bare.
        assert len(row.wrapped_key) == 12 + 32 + 16
        assert row.master_key_id == master.key_id


def test_a_field_round_trips_and_the_ciphertext_reveals_nothing(db, clock, master):
    subject = uuid.uuid4()
    keys.create_key(session=db, master=master, subject_id=subject, clock=clock)
    sealed = _seal(db, master, subject)
    assert PASSPORT.encode() not in sealed
    assert sealed != _seal(db, master, subject)  # a fresh nonce every time
    db.commit()
    db.info.clear()  # no cached key: unwrap from the database again
    assert _open(db, master, subject, sealed) == PASSPORT


@pytest.mark.parametrize(
    "moved",
    [{"row_id": "row-2"}, {"column": "passport_authority"}],
)
def test_ciphertext_moved_to_another_row_or_column_does_not_decrypt(db, clock, master, moved):
    subject = uuid.uuid4()
    keys.create_key(session=db, master=master, subject_id=subject, clock=clock)
    sealed = _seal(db, master, subject)
    with pytest.raises(keys.CiphertextInvalid):
        _open(db, master, subject, sealed, **moved)


def test_ciphertext_of_one_subject_does_not_open_with_anothers_key(db, clock, master):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    for subject in (alice, bob):
        keys.create_key(session=db, master=master, subject_id=subject, clock=clock)
    with pytest.raises(keys.CiphertextInvalid):
        _open(db, master, bob, _seal(db, master, alice))


def test_tampered_ciphertext_is_detected(db, clock, master):
    subject = uuid.uuid4()
    keys.create_key(session=db, master=master, subject_id=subject, clock=clock)
    sealed = bytearray(_seal(db, master, subject))
    sealed[-1] ^= 1
    with pytest.raises(keys.CiphertextInvalid):
        _open(db, master, subject, bytes(sealed))


def test_destroying_the_key_makes_the_data_unreadable_for_good(db, clock, master):
    subject = uuid.uuid4()
    keys.create_key(session=db, master=master, subject_id=subject, clock=clock)
    sealed = _seal(db, master, subject)
    assert keys.destroy_key(session=db, subject_id=subject, clock=clock)
    db.commit()
    row = db.get(SubjectKey, subject)
    assert row.wrapped_key is None and row.destroyed_at == clock.now()
    with pytest.raises(keys.KeyDestroyed):
        _open(db, master, subject, sealed)
    with pytest.raises(keys.KeyDestroyed):
        _seal(db, master, subject)
    assert not keys.destroy_key(session=db, subject_id=subject, clock=clock)


def test_rotation_rewraps_every_key_and_the_data_still_opens(db, clock, master):
    subjects = [uuid.uuid4() for _ in range(3)]
    sealed = {}
    for subject in subjects:
        keys.create_key(session=db, master=master, subject_id=subject, clock=clock)
        sealed[subject] = _seal(db, master, subject)
    keys.destroy_key(session=db, subject_id=subjects[2], clock=clock)
    new = LocalMasterKey(os.urandom(32))
    assert keys.rewrap_all(session=db, old=master, new=new) == 2
    db.commit()
    db.info.clear()
    assert {row.master_key_id for row in db.scalars(select(SubjectKey))} == {new.key_id, None}
    for subject in subjects[:2]:
        assert _open(db, new, subject, sealed[subject]) == PASSPORT
    with pytest.raises(MasterKeyError):
        _open(db, master, subjects[0], sealed[subjects[0]])


def test_the_wrong_master_key_is_refused_loudly(db, clock, master):
    subject = uuid.uuid4()
    keys.create_key(session=db, master=master, subject_id=subject, clock=clock)
    db.commit()
    keys.check_master_key(session=db, master=master)
    with pytest.raises(MasterKeyError, match="configured master key"):
        keys.check_master_key(session=db, master=LocalMasterKey(os.urandom(32)))


def test_master_key_sources(tmp_path, settings):
    with pytest.raises(MasterKeyError, match="base64"):
        decode_key("not base64!!", source="X")
    with pytest.raises(MasterKeyError, match="32 random bytes"):
        decode_key("c2hvcnQ=", source="X")
    path = tmp_path / "master.key"
    created = create_key_file(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert read_key_file(path).key_id == created.key_id
    with pytest.raises(MasterKeyError, match="does not exist"):
        read_key_file(tmp_path / "missing.key")
    # Production without a key: a clear refusal, never silently unreadable data.
    bare = settings.model_copy(update={"master_key": None, "master_key_file": None})
    with pytest.raises(MasterKeyError, match="no master key"):
        from_settings(bare)
    development = bare.model_copy(
        update={"env": Environment.DEVELOPMENT, "var_dir": tmp_path / "var"}
    )
    first = from_settings(development)
    assert from_settings(development).key_id == first.key_id  # created once, then reused


def test_keyring_hides_its_secrets(master):
    text = repr(Keyring(master=master, secret="s" * 40))
    assert "s" * 40 not in text and master.key_id in text


def test_keys_load_in_one_go_and_a_destroyed_one_stays_destroyed(db, clock, master, engine):
    alive, shredded = uuid.uuid4(), uuid.uuid4()
    for subject in (alive, shredded):
        keys.create_key(session=db, master=master, subject_id=subject, clock=clock)
    sealed = keys.encrypt_field(session=db, master=master, subject_id=alive, table="t",
                                column="c", row_id=1, plaintext="Almaty")  # fmt: skip
    keys.destroy_key(session=db, subject_id=shredded, clock=clock)
    db.commit()
    with Session(engine) as fresh:
        statements = []
        listen = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listen)
        try:
            ciphers = keys.ciphers_of(session=fresh, master=master, subject_ids=[alive, shredded])
            opened = keys.decrypt_field(
                session=fresh, master=master, subject_id=alive, table="t", column="c", row_id=1,
                ciphertext=sealed,
            )  # fmt: skip
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        assert opened == "Almaty"
        assert set(ciphers) == {alive}
        assert len([s for s in statements if "subject_keys" in s]) == 1
        with pytest.raises(keys.KeyDestroyed):
            keys.encrypt_field(session=fresh, master=master, subject_id=shredded, table="t",
                               column="c", row_id=1, plaintext="x")  # fmt: skip
