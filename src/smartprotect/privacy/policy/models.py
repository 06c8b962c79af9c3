"""Published revisions of the privacy policy, their texts, and users' answers to them."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from smartprotect.db import Model


class PolicyRevision(Model):
    """One revision, in force from the moment it is posted (clause 8.2). Never changed."""

    __tablename__ = "policy_revisions"

    version: Mapped[str] = mapped_column(String(64), unique=True)
    # The date the revision carries ("Revision from 15/06/2017").
    revision_date: Mapped[date]
    # When it was posted on the Site, which is when it took effect.
    published_at: Mapped[datetime]

    documents: Mapped[list[PolicyDocument]] = relationship(
        back_populates="revision", order_by="PolicyDocument.language"
    )


class PolicyDocument(Model):
    """The text of a revision in one language; every revision has one per site language."""

    __tablename__ = "policy_documents"
    __table_args__ = (UniqueConstraint("revision_id", "language"),)

    revision_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("policy_revisions.id"))
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))

    revision: Mapped[PolicyRevision] = relationship(back_populates="documents")

    @property
    def version(self) -> str:
        return self.revision.version

    @property
    def published_at(self) -> datetime:
        return self.revision.published_at


class PolicyAcceptance(Model):
    __tablename__ = "policy_acceptances"

    # No foreign key: proof of what was accepted outlives the account.
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    # The text in the language the user read.
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("policy_documents.id"))
    channel: Mapped[str] = mapped_column(String(16))
    accepted_at: Mapped[datetime]


class PolicyDecline(Model):
    """A user's refusal of a revision: under clause 8.3 they may not use the Application."""

    __tablename__ = "policy_declines"

    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("policy_documents.id"))
    channel: Mapped[str] = mapped_column(String(16))
    declined_at: Mapped[datetime]
