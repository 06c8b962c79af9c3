"""Published revisions of the privacy policy and users' acceptances of them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from smartprotect.db import Model


class PolicyDocument(Model):
    """The text of one revision in one language; never changed once published."""

    __tablename__ = "policy_documents"
    __table_args__ = (UniqueConstraint("version", "language"),)

    version: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime]


class PolicyAcceptance(Model):
    __tablename__ = "policy_acceptances"

    # No foreign key: proof of what was accepted outlives the account.
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("policy_documents.id"))
    channel: Mapped[str] = mapped_column(String(16))
    accepted_at: Mapped[datetime]
