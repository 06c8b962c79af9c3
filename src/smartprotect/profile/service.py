"""The personal data profile (clause 2.3): see, change (7.1) and delete single items.

Names and phone live on the account; passport data and other information are items of
their own, sealed with the subject's key. Every item records when it was provided: its
retention clock (clause 2.4), restarted when the user gives it again. Every change is
audited without its values; every reveal of passport data is audited too.
"""

from __future__ import annotations

import enum
import hmac
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from smartprotect.accounts.models import User
from smartprotect.accounts.schemas import normalise_phone
from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.errors import ValidationFailed
from smartprotect.i18n import N_
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.keys.master import Keyring
from smartprotect.privacy.keys.sealed import index_in
from smartprotect.privacy.retention.rules import RETENTION, Category
from smartprotect.profile.models import PASSPORT_FIELDS, Field, PhoneConfirmation, ProfileItem
from smartprotect.profile.schemas import EARLIEST_ISSUE, NamesUpdate, PassportUpdate
from smartprotect.security import keyed_hash

MASK = "•"
# Enough of the number to tell documents apart, not enough to use it.
VISIBLE_DIGITS = 2


class Item(enum.StrEnum):
    """What the user can change or delete on its own."""

    NAMES = "names"
    PHONE = "phone"
    PASSPORT = "passport"
    OTHER_INFORMATION = "other_information"


@dataclass(frozen=True)
class Passport:
    number: str
    authority: str
    issued_on: date
    provided_at: datetime

    def masked(self) -> Passport:
        hidden = max(len(self.number) - VISIBLE_DIGITS, 0)
        return Passport(
            number=MASK * hidden + self.number[hidden:],
            authority=MASK * 6,
            issued_on=self.issued_on.replace(month=1, day=1),
            provided_at=self.provided_at,
        )


@dataclass(frozen=True)
class Profile:
    email: str
    email_provided_at: datetime | None
    pending_email: str | None
    phone: str
    phone_provided_at: datetime | None
    phone_verified: bool
    last_name: str | None
    first_name: str | None
    patronymic: str | None
    names_provided_at: datetime | None
    passport: Passport | None  # masked unless revealed
    passport_revealed: bool
    other_information: str | None
    other_provided_at: datetime | None
    kept_until: datetime | None  # the account, unless the user gives their details again


def _items(session: Session, user: User) -> dict[Field, ProfileItem]:
    return {
        item.field: item
        for item in session.scalars(select(ProfileItem).where(ProfileItem.user_id == user.id))
    }


def _open(session: Session, keyring: Keyring, item: ProfileItem) -> str:
    return keys.decrypt_field(
        session=session, master=keyring.master, subject_id=item.user_id,
        table=ProfileItem.__tablename__, column="sealed", row_id=item.id, ciphertext=item.sealed,
    )  # fmt: skip


def _audit(session, keyring, clock, user, action: Tag, item: Item) -> None:
    audit.record_event(
        session=session, clock=clock, action=action, secret=keyring.secret,
        actor=audit.user_actor(secret=keyring.secret, user_id=user.id), subject_id=user.id,
        details={"item": item.value, "category": _category(item).value},
    )  # fmt: skip


def _category(item: Item) -> Category:
    return {
        Item.NAMES: Category.NAMES, Item.PHONE: Category.PHONE, Item.PASSPORT: Category.PASSPORT,
        Item.OTHER_INFORMATION: Category.OTHER,
    }[item]  # fmt: skip


def profile_of(
    *,
    session: Session,
    keyring: Keyring,
    user: User,
    reveal: bool = False,
    clock: Clock | None = None,
) -> Profile:
    """Everything the profile holds about the user; passport data masked unless `reveal`,
    which is audited (and so needs the clock)."""
    items = _items(session, user)
    passport = _passport(session, keyring, items)
    if passport is not None:
        if reveal:
            if clock is None:
                raise ValueError("revealing passport data is audited: pass the clock")
            audit.record_event(
                session=session, clock=clock, action=Tag.PROFILE_PASSPORT_REVEALED,
                secret=keyring.secret, subject_id=user.id,
                actor=audit.user_actor(secret=keyring.secret, user_id=user.id),
            )  # fmt: skip
        else:
            passport = passport.masked()
    other = items.get(Field.OTHER_INFORMATION)
    return Profile(
        email=user.email, email_provided_at=user.email_provided_at,
        pending_email=user.pending_email, phone=user.phone,
        phone_provided_at=user.phone_provided_at, phone_verified=user.phone_verified_at is not None,
        last_name=user.last_name, first_name=user.first_name, patronymic=user.patronymic,
        names_provided_at=user.names_provided_at, passport=passport,
        passport_revealed=reveal and passport is not None,
        other_information=_open(session, keyring, other) if other else None,
        other_provided_at=other.provided_at if other else None,
        kept_until=account_kept_until(user),
    )  # fmt: skip


def _passport(session: Session, keyring: Keyring, items: dict[Field, ProfileItem]):
    if not all(field in items for field in PASSPORT_FIELDS):
        return None
    return Passport(
        number=_open(session, keyring, items[Field.PASSPORT_NUMBER]),
        authority=_open(session, keyring, items[Field.PASSPORT_AUTHORITY]),
        issued_on=date.fromisoformat(_open(session, keyring, items[Field.PASSPORT_ISSUED_ON])),
        provided_at=items[Field.PASSPORT_NUMBER].provided_at,
    )


def open_passport(*, session: Session, keyring: Keyring, user: User) -> Passport | None:
    """The user's passport data in full, for their own copy of their data (the export, which
    is audited as a whole); on screen it is shown through `profile_of`."""
    return _passport(session, keyring, _items(session, user))


def change_names(
    *, session: Session, keyring: Keyring, user: User, names: NamesUpdate, clock: Clock
) -> None:
    """Set last name, first name and patronymic; their retention clock restarts."""
    user.last_name, user.first_name, user.patronymic = (
        names.last_name, names.first_name, names.patronymic
    )  # fmt: skip
    user.names_provided_at = clock.now() if any((user.last_name, user.first_name,
                                                 user.patronymic)) else None  # fmt: skip
    _audit(session, keyring, clock, user, Tag.PROFILE_CHANGED, Item.NAMES)
    session.flush()


def change_phone(
    *, session: Session, keyring: Keyring, user: User, phone: str, clock: Clock
) -> None:
    """Set a new phone number: unverified until confirmed, and so not used until then."""
    try:
        number = normalise_phone(phone)
    except ValueError as exc:
        raise ValidationFailed({"phone": _message(exc)}) from None
    if number == user.phone:
        return
    user.phone = number
    user.phone_provided_at = clock.now()
    user.phone_verified_at = None
    _audit(session, keyring, clock, user, Tag.PROFILE_CHANGED, Item.PHONE)
    session.flush()


# A confirmation code: six digits, tried at most five times, good for ten minutes; a new
# one at most every minute, so a page cannot be made to text a phone without end.
CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
CODE_COOLDOWN = timedelta(minutes=1)
MAX_CODE_ATTEMPTS = 5


class CodeIncorrect(ValidationFailed):
    """A wrong confirmation code: the attempt is counted, so its transaction is kept."""

    keeps_transaction = True


def _code_hash(keyring: Keyring, user: User, code: str) -> str:
    return keyed_hash(secret=keyring.secret, purpose="phone-code", value=f"{user.id}:{code}")


def _phone_index(session: Session, user: User) -> str:
    return index_in(session, purpose="phone", value=user.phone)


def request_phone_confirmation(
    *, session: Session, keyring: Keyring, user: User, clock: Clock
) -> str:
    """A new code for the account's unconfirmed number, for the caller to text to it once
    this transaction commits."""
    if not user.phone:
        raise ValidationFailed({"code": N_("Give a phone number first.")})
    if user.phone_verified_at is not None:
        raise ValidationFailed({"code": N_("This number is already confirmed.")})
    now = clock.now()
    recent = session.scalar(select(func.count()).select_from(PhoneConfirmation).where(
        PhoneConfirmation.user_id == user.id,
        PhoneConfirmation.created_at > now - CODE_COOLDOWN,
    ))  # fmt: skip
    if recent:
        raise ValidationFailed({"code": N_("A code was sent a moment ago: wait a minute.")})
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    session.add(PhoneConfirmation(
        user_id=user.id, phone_index=_phone_index(session, user),
        code_hash=_code_hash(keyring, user, code), created_at=now, expires_at=now + CODE_TTL,
        attempts=0,
    ))  # fmt: skip
    _audit(session, keyring, clock, user, Tag.PROFILE_PHONE_CODE_SENT, Item.PHONE)
    session.flush()
    return code


def confirm_phone(
    *, session: Session, keyring: Keyring, user: User, code: str, clock: Clock
) -> None:
    """Mark the account's number confirmed, given the last code texted to it."""
    now = clock.now()
    latest = session.scalar(
        select(PhoneConfirmation)
        .where(PhoneConfirmation.user_id == user.id)
        .order_by(PhoneConfirmation.created_at.desc())
        .limit(1)
        .with_for_update()
    )
    if (
        latest is None or latest.used_at is not None or latest.expires_at <= now
        or not user.phone or latest.phone_index != _phone_index(session, user)
    ):  # fmt: skip
        raise ValidationFailed({"code": N_("This code has expired: ask for a new one.")})
    if latest.attempts >= MAX_CODE_ATTEMPTS:
        raise ValidationFailed({"code": N_("Too many wrong codes: ask for a new one.")})
    given = "".join(code.split())
    if not hmac.compare_digest(latest.code_hash, _code_hash(keyring, user, given)):
        latest.attempts += 1
        session.flush()
        raise CodeIncorrect({"code": N_("The code is incorrect.")})
    latest.used_at = user.phone_verified_at = now
    _audit(session, keyring, clock, user, Tag.PROFILE_PHONE_CONFIRMED, Item.PHONE)
    session.flush()


def _message(exc: Exception) -> str:
    # Our validators raise PydanticCustomError whose message is the message id.
    return getattr(exc, "message_template", None) or str(exc)


def _seal(session: Session, keyring: Keyring, user: User, field: Field, value: str, now) -> None:
    item = session.scalar(
        select(ProfileItem).where(ProfileItem.user_id == user.id, ProfileItem.field == field)
    )
    if item is None:
        item = ProfileItem(user_id=user.id, field=field, sealed=b"", provided_at=now)
        session.add(item)
        session.flush()  # the row id is part of what the ciphertext is bound to
    item.sealed = keys.encrypt_field(
        session=session, master=keyring.master, subject_id=user.id,
        table=ProfileItem.__tablename__, column="sealed", row_id=item.id, plaintext=value,
    )  # fmt: skip
    item.provided_at = now


def set_passport(
    *, session: Session, keyring: Keyring, user: User, passport: PassportUpdate, clock: Clock
) -> None:
    """Store passport data (number, issuing authority, date of issue), sealed."""
    now = clock.now()
    if passport.issued_on > now.date():
        raise ValidationFailed({"issued_on": N_("The date of issue cannot be in the future.")})
    if passport.issued_on < EARLIEST_ISSUE:
        raise ValidationFailed({"issued_on": N_("This date of issue is not valid.")})
    _seal(session, keyring, user, Field.PASSPORT_NUMBER, passport.number, now)
    _seal(session, keyring, user, Field.PASSPORT_AUTHORITY, passport.authority, now)
    _seal(session, keyring, user, Field.PASSPORT_ISSUED_ON, passport.issued_on.isoformat(), now)
    _audit(session, keyring, clock, user, Tag.PROFILE_CHANGED, Item.PASSPORT)
    session.flush()


def set_other_information(
    *, session: Session, keyring: Keyring, user: User, text: str, clock: Clock
) -> None:
    """Store the other information the user chooses to give (clause 2.3.7), sealed."""
    _seal(session, keyring, user, Field.OTHER_INFORMATION, text, clock.now())
    _audit(session, keyring, clock, user, Tag.PROFILE_CHANGED, Item.OTHER_INFORMATION)
    session.flush()


def delete_item(
    *, session: Session, keyring: Keyring, user: User, item: Item, clock: Clock
) -> None:
    """Delete one item. Email and phone are how the service reaches the user under the
    contract (clause 4.1.2): they can be changed, and go only with the account."""
    if item is Item.NAMES:
        user.last_name = user.first_name = user.patronymic = None
        user.names_provided_at = None
    elif item is Item.PASSPORT:
        _delete_fields(session, user, PASSPORT_FIELDS)
    elif item is Item.OTHER_INFORMATION:
        _delete_fields(session, user, (Field.OTHER_INFORMATION,))
    else:
        raise ValidationFailed(
            {"item": N_("Your phone number can be changed, not deleted: it goes with the account.")}
        )
    _audit(session, keyring, clock, user, Tag.PROFILE_DELETED, item)
    session.flush()


def _delete_fields(session: Session, user: User, fields) -> None:
    session.execute(
        delete(ProfileItem).where(ProfileItem.user_id == user.id, ProfileItem.field.in_(fields)),
        execution_options={"synchronize_session": False},
    )


def renew(*, session: Session, keyring: Keyring, user: User, clock: Clock) -> None:
    """The user confirms that their address, number and names are still current: giving
    them again restarts their retention clocks (clause 2.4)."""
    now = clock.now()
    user.email_provided_at = user.phone_provided_at = now
    if any((user.last_name, user.first_name, user.patronymic)):
        user.names_provided_at = now
    user.renewal_reminded_at = None
    audit.record_event(
        session=session, clock=clock, action=Tag.PROFILE_RENEWED, secret=keyring.secret,
        actor=audit.user_actor(secret=keyring.secret, user_id=user.id), subject_id=user.id,
    )  # fmt: skip
    session.flush()


def account_kept_until(user: User) -> datetime | None:
    """When the account reaches its year unless its owner gives their address again (the
    erasure itself waits until a reminder is a month old: retention.job)."""
    return user.email_provided_at + RETENTION if user.email_provided_at else None
