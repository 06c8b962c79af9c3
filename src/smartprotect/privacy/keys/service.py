"""Envelope encryption of personal data with a per-subject key (AES-256-GCM).

Each field is bound to its place (table, column, row) as associated data, so a ciphertext
copied into another row or column does not decrypt. Destroying a subject's key makes all of
their ciphertext unreadable everywhere, backups included (crypto-shredding).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from smartprotect.clock import Clock
from smartprotect.errors import SmartProtectError
from smartprotect.i18n import N_
from smartprotect.privacy.keys.master import MasterKey, MasterKeyError
from smartprotect.privacy.keys.models import SubjectKey

DATA_KEY_BYTES = 32
NONCE_BYTES = 12
# The first byte of every ciphertext names its format, so it can change later.
FORMAT_V1 = b"\x01"
# Unwrapped keys (ready ciphers) are kept on the session for its lifetime only, never beyond
# the request or job. One exception: check-in batches keep the keys `ciphers_of` gives them
# for at most 5 minutes, and not past any change to a key (`devices.known`).
_CACHE = "smartprotect.data_keys"


class KeyDestroyed(SmartProtectError):
    """The subject's key has been destroyed: their data is gone for good."""

    status_code = 410
    title = "Gone"


class CiphertextInvalid(SmartProtectError):
    """A ciphertext failed authentication: altered, or moved from its place."""

    status_code = 500
    title = "Integrity error"


def _wrap_context(subject_id: uuid.UUID) -> bytes:
    return b"subject-key\x00" + str(subject_id).encode()


def _field_context(table: str, column: str, row_id: object) -> bytes:
    return f"{table}\x00{column}\x00{row_id}".encode()


def create_key(
    *, session: Session, master: MasterKey, subject_id: uuid.UUID, clock: Clock
) -> SubjectKey:
    """Give a subject a fresh random data key, stored wrapped."""
    data_key = os.urandom(DATA_KEY_BYTES)
    row = SubjectKey(
        subject_id=subject_id,
        wrapped_key=master.wrap(data_key, context=_wrap_context(subject_id)),
        master_key_id=master.key_id,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    session.info.setdefault(_CACHE, {})[master.key_id, subject_id] = AESGCM(data_key)
    return row


def _unwrap(master: MasterKey, row, subject_id: uuid.UUID) -> bytes:
    if row is None or row.wrapped_key is None:
        raise KeyDestroyed(N_("This person's data has been erased."))
    if row.master_key_id != master.key_id:
        raise MasterKeyError(
            f"the data key of a subject is wrapped by master key {row.master_key_id}, "
            f"but the configured master key is {master.key_id}"
        )
    return master.unwrap(row.wrapped_key, context=_wrap_context(subject_id))


def _cipher(*, session: Session, master: MasterKey, subject_id: uuid.UUID) -> AESGCM:
    cache: dict[tuple[str, uuid.UUID], AESGCM] = session.info.setdefault(_CACHE, {})
    cipher = cache.get((master.key_id, subject_id))
    if cipher is None:
        cipher = AESGCM(_unwrap(master, session.get(SubjectKey, subject_id), subject_id))
        cache[master.key_id, subject_id] = cipher
    return cipher


_subject_keys = SubjectKey.__table__.c
_KEYS_OF = select(
    _subject_keys.subject_id, _subject_keys.wrapped_key, _subject_keys.master_key_id
).where(_subject_keys.subject_id.in_(bindparam("subjects", expanding=True)))


def ciphers_of(
    *, session: Session, master: MasterKey, subject_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, AESGCM]:
    """Several subjects' keys, unwrapped with one query, for `seal_with` (also kept for this
    session); a subject whose key is destroyed is left out."""
    cache: dict[tuple[str, uuid.UUID], AESGCM] = session.info.setdefault(_CACHE, {})
    subject_ids = set(subject_ids)
    wanted = [s for s in subject_ids if (master.key_id, s) not in cache]
    if wanted:
        for row in session.execute(_KEYS_OF, {"subjects": wanted}):
            if row.wrapped_key is not None:
                cache[master.key_id, row.subject_id] = AESGCM(_unwrap(master, row, row.subject_id))
    return {s: cache[master.key_id, s] for s in subject_ids if (master.key_id, s) in cache}


def encrypt_field(
    *,
    session: Session,
    master: MasterKey,
    subject_id: uuid.UUID,
    table: str,
    column: str,
    row_id: object,
    plaintext: str,
) -> bytes:
    """Encrypt one field of one row with the subject's key."""
    cipher = _cipher(session=session, master=master, subject_id=subject_id)
    return seal_with(cipher, table=table, column=column, row_id=row_id, plaintext=plaintext)


def seal_with(cipher: AESGCM, *, table: str, column: str, row_id: object, plaintext: str) -> bytes:
    """`encrypt_field` with a key already at hand (for migrations, which have no models)."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = cipher.encrypt(nonce, plaintext.encode("utf-8"), _field_context(table, column, row_id))
    return FORMAT_V1 + nonce + sealed


def open_with(cipher: AESGCM, *, table: str, column: str, row_id: object, ciphertext: bytes) -> str:
    """`decrypt_field` with a key already at hand."""
    if not ciphertext.startswith(FORMAT_V1):
        raise CiphertextInvalid(N_("Stored data failed its integrity check."))
    nonce, sealed = ciphertext[1 : 1 + NONCE_BYTES], ciphertext[1 + NONCE_BYTES :]
    try:
        plain = cipher.decrypt(nonce, sealed, _field_context(table, column, row_id))
    except InvalidTag:
        raise CiphertextInvalid(N_("Stored data failed its integrity check.")) from None
    return plain.decode("utf-8")


def unwrap_key(master: MasterKey, *, wrapped: bytes, subject_id: uuid.UUID) -> AESGCM:
    """A subject's data key as a cipher, from its stored wrapped form."""
    return AESGCM(master.unwrap(wrapped, context=_wrap_context(subject_id)))


def decrypt_field(
    *,
    session: Session,
    master: MasterKey,
    subject_id: uuid.UUID,
    table: str,
    column: str,
    row_id: object,
    ciphertext: bytes,
) -> str:
    """Decrypt a field sealed by `encrypt_field` for the same table, column and row."""
    cipher = _cipher(session=session, master=master, subject_id=subject_id)
    return open_with(cipher, table=table, column=column, row_id=row_id, ciphertext=ciphertext)


def key_exists(*, session: Session, subject_id: uuid.UUID) -> bool:
    """Whether the subject has a live (not destroyed) key."""
    row = session.get(SubjectKey, subject_id)
    return row is not None and row.wrapped_key is not None


def destroy_key(*, session: Session, subject_id: uuid.UUID, clock: Clock) -> bool:
    """Shred a subject's key; returns False if it was already gone."""
    cache = session.info.get(_CACHE, {})
    for cached in [key for key in cache if key[1] == subject_id]:
        del cache[cached]
    row = session.get(SubjectKey, subject_id)
    if row is None or row.wrapped_key is None:
        return False
    row.wrapped_key = None
    row.master_key_id = None
    row.destroyed_at = clock.now()
    session.flush()
    return True


def rewrap_all(*, session: Session, old: MasterKey, new: MasterKey) -> int:
    """Re-wrap every live data key from the old master key to the new one."""
    count = 0
    rows = session.scalars(
        select(SubjectKey).where(
            SubjectKey.master_key_id == old.key_id, SubjectKey.wrapped_key.is_not(None)
        )
    )
    for row in rows:
        context = _wrap_context(row.subject_id)
        row.wrapped_key = new.wrap(old.unwrap(row.wrapped_key, context=context), context=context)
        row.master_key_id = new.key_id
        count += 1
    session.flush()
    return count


def check_master_key(*, session: Session, master: MasterKey) -> None:
    """Fail loudly if stored keys were wrapped by another master key (or it cannot unwrap)."""
    foreign = session.scalars(
        select(SubjectKey.master_key_id)
        .where(SubjectKey.wrapped_key.is_not(None), SubjectKey.master_key_id != master.key_id)
        .distinct()
    ).all()
    if foreign:
        raise MasterKeyError(
            f"data keys are wrapped by master key(s) {', '.join(sorted(foreign))}, but the "
            f"configured master key is {master.key_id}: configure the right key, or rotate "
            "with `smartprotect keys rotate`"
        )
    sample = session.scalar(select(SubjectKey).where(SubjectKey.wrapped_key.is_not(None)).limit(1))
    if sample is not None and sample.wrapped_key is not None:
        master.unwrap(sample.wrapped_key, context=_wrap_context(sample.subject_id))
