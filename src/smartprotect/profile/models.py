"""The personal data profile's sealed items: passport data (2.3.2) and other information the
user chooses to give (2.3.7). Names, email and phone live on the account (`users`)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smartprotect.db import Model, str_enum
from smartprotect.privacy.retention.rules import Category, Rule, register


class Field(enum.StrEnum):
    PASSPORT_NUMBER = "passport_number"
    PASSPORT_AUTHORITY = "passport_authority"
    PASSPORT_ISSUED_ON = "passport_issued_on"
    OTHER_INFORMATION = "other_information"


PASSPORT_FIELDS = (Field.PASSPORT_NUMBER, Field.PASSPORT_AUTHORITY, Field.PASSPORT_ISSUED_ON)

CATEGORY_OF: dict[Field, Category] = {
    **dict.fromkeys(PASSPORT_FIELDS, Category.PASSPORT),
    Field.OTHER_INFORMATION: Category.OTHER,
}


class ProfileItem(Model):
    """One item, sealed with its subject's key; its retention clock starts when provided."""

    __tablename__ = "profile_items"
    __table_args__ = (UniqueConstraint("user_id", "field"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    field: Mapped[Field] = mapped_column(str_enum(Field, 32))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    provided_at: Mapped[datetime]


for _category in (Category.PASSPORT, Category.OTHER):
    register(
        Rule(
            _category, ProfileItem, ProfileItem.provided_at,
            lambda ids: ProfileItem.user_id.in_(ids),
            where=ProfileItem.field.in_([f for f, c in CATEGORY_OF.items() if c is _category]),
        )
    )  # fmt: skip


class PhoneConfirmation(Model):
    """A code texted to the account's phone number, to confirm the number is theirs. Only a
    keyed hash of the code is kept, with the blind index of the number it was sent to: a
    code for an earlier number confirms nothing."""

    __tablename__ = "phone_confirmations"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    phone_index: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None]


register(Rule(Category.TECHNICAL, PhoneConfirmation, PhoneConfirmation.created_at,
              lambda ids: PhoneConfirmation.user_id.in_(ids)))  # fmt: skip
