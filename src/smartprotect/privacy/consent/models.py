"""Consent events: each grant or withdrawal, time-stamped and never edited."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from smartprotect.db import Model, str_enum


class Purpose(enum.StrEnum):
    # Clause 3.1: processing and storage, including transfer to third parties...
    PROCESSING_AND_STORAGE = "processing_and_storage"
    # ...even to the territory of other states.
    CROSS_BORDER_TRANSFER = "cross_border_transfer"
    # Clause 3.2: mailings to the e-mail address and to the phone number.
    MARKETING_EMAIL = "marketing_email"
    MARKETING_SMS = "marketing_sms"


class ConsentAction(enum.StrEnum):
    GRANT = "grant"
    WITHDRAW = "withdraw"


class Channel(enum.StrEnum):
    WEB = "web"
    APP = "app"
    EMAIL_LINK = "email_link"
    API = "api"
    STAFF = "staff"


class ConsentEvent(Model):
    __tablename__ = "consent_events"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[Purpose] = mapped_column(str_enum(Purpose, 40))
    action: Mapped[ConsentAction] = mapped_column(str_enum(ConsentAction, 16))
    policy_document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("policy_documents.id"))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, 16))
    occurred_at: Mapped[datetime]
    user_agent: Mapped[str | None] = mapped_column(String(255))
