"""The consent ledger: each grant or withdrawal, time-stamped, never changed or removed."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from smartprotect.db import Base, str_enum


class Purpose(enum.StrEnum):
    # Clause 3.1: processing and storage, including transfer to third parties...
    PROCESSING_AND_STORAGE = "processing_and_storage"
    # ...even to the territory of other states.
    CROSS_BORDER_TRANSFER = "cross_border_transfer"
    # Clause 3.2: mailings to the e-mail address and to the phone number.
    MARKETING_EMAIL = "marketing_email"
    MARKETING_SMS = "marketing_sms"
    # Clause 2.2: cookies beyond those the site needs to work.
    ANALYTICS_COOKIES = "analytics_cookies"
    # Clause 1.5 and 2.3.4/2.3.6: what the owner lets the Application do on one device.
    DEVICE_LOCATE = "device_locate"
    DEVICE_RING = "device_ring"
    DEVICE_LOCK = "device_lock"
    DEVICE_WIPE = "device_wipe"
    DEVICE_ACCOUNTS = "device_accounts"


class ConsentAction(enum.StrEnum):
    GRANT = "grant"
    WITHDRAW = "withdraw"


class Channel(enum.StrEnum):
    WEB = "web"
    APP = "app"
    EMAIL_LINK = "email_link"
    API = "api"
    STAFF = "staff"


class ConsentEvent(Base):
    __tablename__ = "consent_events"
    # "Is this permitted now?" looks up the latest event per subject, purpose and scope.
    __table_args__ = (
        Index("ix_consent_events_subject_purpose_scope", "subject_id", "purpose", "scope", "id"),
    )

    # Ordered by insertion: two events in the same instant still have a defined order.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # Known before the insert, so personal fields can be sealed to this row (the ledger
    # refuses UPDATE, and the integer id is only assigned by the insert).
    uid: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    # No foreign key: the ledger is evidence and outlives the account (pseudonymous by then).
    subject_id: Mapped[uuid.UUID]
    # What the consent is limited to, if not the whole account: "device:<id>".
    scope: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[Purpose] = mapped_column(str_enum(Purpose, 40))
    action: Mapped[ConsentAction] = mapped_column(str_enum(ConsentAction, 16))
    policy_document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("policy_documents.id"))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, 16))
    # "user:<pseudonym>" when the subject acted, "staff:<id>" or "system" otherwise.
    actor: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime]
    # Personal data, so sealed with the subject's key; the IP only as a keyed hash.
    sealed_user_agent: Mapped[bytes | None] = mapped_column(LargeBinary)
    ip_hash: Mapped[str | None] = mapped_column(String(64))
