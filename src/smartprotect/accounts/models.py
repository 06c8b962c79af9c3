"""Accounts: users, their sign-in sessions, one-time email tokens and API tokens."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from smartprotect.db import Model, str_enum
from smartprotect.privacy.keys.sealed import Sealed
from smartprotect.privacy.retention.rules import Category, Rule, register

# Failed sign-ins are kept only as long as the throttle looks back.
LOGIN_THROTTLE_WINDOW = timedelta(minutes=15)
# What the blind indexes of addresses are computed as: one kind, so they match across tables.
EMAIL_ADDRESS = "email"


def address_form(address: str) -> str:
    """An address as it is indexed: the same however it was typed."""
    return address.strip().lower()


class User(Model):
    """An account. Its owner's address, phone and names are stored only sealed with their
    key (`Sealed`), so no copy the database keeps of a row names them once the key is gone;
    the address is found by its blind index."""

    __tablename__ = "users"
    # Named, and sized, for the address column the index replaced.
    __table_args__ = (UniqueConstraint("email_index", name="uq_users_email"),)

    email_index: Mapped[str] = mapped_column(String(254))
    email_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_verified_at: Mapped[datetime | None]
    phone_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    password_hash: Mapped[str] = mapped_column(String(255))
    last_name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    first_name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    patronymic_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]
    password_changed_at: Mapped[datetime]
    # When each item was last given (clause 2.4: its retention clock); None if not given.
    email_provided_at: Mapped[datetime | None]
    phone_provided_at: Mapped[datetime | None]
    names_provided_at: Mapped[datetime | None]
    # A new address waits here until a link mailed to it is opened; until then the old one
    # is used (clause 7.1's rectification, without locking anyone out by a typo).
    pending_email_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Set when the number is confirmed; a changed number is not used until it is.
    phone_verified_at: Mapped[datetime | None]
    # When the owner was last told their account is about to reach its retention limit.
    renewal_reminded_at: Mapped[datetime | None]

    sessions: Mapped[list[WebSession]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    email = Sealed("email_sealed", index="email_index", index_as=EMAIL_ADDRESS,
                   index_form=address_form)  # fmt: skip
    pending_email = Sealed("pending_email_sealed")
    # An empty number means "not given".
    phone = Sealed("phone_sealed", empty="")
    last_name = Sealed("last_name_sealed")
    first_name = Sealed("first_name_sealed")
    patronymic = Sealed("patronymic_sealed")

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None


class WebSession(Model):
    """A signed-in browser; the cookie holds a secret whose hash is stored here."""

    __tablename__ = "web_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    user: Mapped[User] = relationship(back_populates="sessions")


class EmailTokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose name, not a secret
    CHANGE_EMAIL = "change_email"
    # Requests made by email (privacy.rights.requests), confirmed by the account's owner.
    RIGHTS_ERASE = "rights_erase"
    RIGHTS_EXPORT = "rights_export"
    RIGHTS_WITHDRAW_MARKETING = "rights_withdraw_marketing"


class EmailToken(Model):
    """A one-time link sent by email; only the hash of its secret is kept."""

    __tablename__ = "email_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[EmailTokenPurpose] = mapped_column(str_enum(EmailTokenPurpose, 32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The blind index of the address the link was sent to: a link for an old address must
    # not verify a new one.
    email_index: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ApiToken(Model):
    """A personal API token for /api/v1; shown once, stored as a hash."""

    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, so the owner can tell tokens apart without the secret.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class LoginAttempt(Model):
    """A failed sign-in, keyed by hashes so the throttle holds no addresses in clear."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_account_key_at", "account_key", "attempted_at"),
        Index("ix_login_attempts_client_key_at", "client_key", "attempted_at"),
    )

    account_key: Mapped[str] = mapped_column(String(64))
    client_key: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[datetime]


register(Rule(Category.NAMES, User, User.names_provided_at, lambda ids: User.id.in_(ids),
              clear=("last_name_sealed", "first_name_sealed", "patronymic_sealed",
                     "names_provided_at")))  # fmt: skip
# The address is what the account exists by: an account whose owner has not given it again
# for a year (signing in, confirming it on the personal data page) is erased whole, once the
# owner was mailed a reminder long enough before (retention.job).
register(Rule(Category.EMAIL, User, User.email_provided_at, lambda ids: User.id.in_(ids),
              erases_account=True))  # fmt: skip
register(Rule(Category.PHONE, User, User.phone_provided_at, lambda ids: User.id.in_(ids),
              clear=("phone_sealed", "phone_provided_at", "phone_verified_at")))  # fmt: skip
register(Rule(Category.TECHNICAL, WebSession, WebSession.created_at,
              lambda ids: WebSession.user_id.in_(ids)))  # fmt: skip
register(Rule(Category.TECHNICAL, EmailToken, EmailToken.created_at,
              lambda ids: EmailToken.user_id.in_(ids)))  # fmt: skip
register(Rule(Category.TECHNICAL, ApiToken, ApiToken.created_at,
              lambda ids: ApiToken.user_id.in_(ids)))  # fmt: skip
register(Rule(Category.TECHNICAL, LoginAttempt, LoginAttempt.attempted_at, None,
              keep=LOGIN_THROTTLE_WINDOW))  # fmt: skip
