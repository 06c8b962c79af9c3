"""The outbox: mail is written here in the request's transaction, delivered afterwards."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from smartprotect.accounts.models import EMAIL_ADDRESS, address_form
from smartprotect.db import Model, str_enum
from smartprotect.privacy.keys.sealed import Sealed
from smartprotect.privacy.retention.rules import Category, Rule, register


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    # Not sent: its recipient withdrew consent to such mail before it went (clause 7.2).
    CANCELLED = "cancelled"


class OutboxMessage(Model):
    """A message to an account's owner. Its address, subject and bodies (which may name the
    owner or their devices) are stored only sealed with the owner's key."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_status_next", "status", "next_attempt_at"),)

    # The account the mail is for, so that it goes with the account (erasure) and a legal
    # hold on the account can keep it. None only for mail queued before mail was sealed,
    # which cannot be sent (there is no key to seal it with).
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # The address's blind index: which mail went to an address, without the address.
    recipient_index: Mapped[str] = mapped_column(String(254))
    recipient_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    subject_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_text_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_html_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Transactional or marketing: later features decide consent checks by it.
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[OutboxStatus] = mapped_column(str_enum(OutboxStatus, 16))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]

    recipient = Sealed("recipient_sealed", subject="user_id", index="recipient_index",
                       index_as=EMAIL_ADDRESS, index_form=address_form)  # fmt: skip
    subject = Sealed("subject_sealed", subject="user_id")
    body_text = Sealed("body_text_sealed", subject="user_id")
    body_html = Sealed("body_html_sealed", subject="user_id")


# Queued and sent mail names its recipient's address; it is kept by address, not account.
register(Rule(Category.EMAIL, OutboxMessage, OutboxMessage.created_at,
              lambda ids: OutboxMessage.user_id.in_(ids)))  # fmt: skip
