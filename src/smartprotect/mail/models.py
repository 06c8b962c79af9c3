"""The outbox: mail is written here in the request's transaction, delivered afterwards."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from smartprotect.db import Model, str_enum
from smartprotect.privacy.retention.rules import Category, Rule, register


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    # Not sent: its recipient withdrew consent to such mail before it went (clause 7.2).
    CANCELLED = "cancelled"


class OutboxMessage(Model):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_status_next", "status", "next_attempt_at"),)

    # The account the mail is for, so that it goes with the account (erasure) and a legal
    # hold on the account can keep it; None for mail to an address no account has.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(255))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Transactional or marketing: later features decide consent checks by it.
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[OutboxStatus] = mapped_column(str_enum(OutboxStatus, 16))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


# Queued and sent mail names its recipient's address; it is kept by address, not account.
register(Rule(Category.EMAIL, OutboxMessage, OutboxMessage.created_at,
              lambda ids: OutboxMessage.user_id.in_(ids)))  # fmt: skip
