"""Legal holds, and the lease that lets one server instance at a time run a job."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from smartprotect.db import Base, Model


class LegalHold(Model):
    """Data the law obliges us to keep: clause 7.1's "cases permitted by law" and clause
    6.2's investigations. While in force, the retention job spares the subject's data of
    the held categories."""

    __tablename__ = "legal_holds"

    # Not a foreign key: a hold can outlive the account (erasure keeps what it covers).
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    categories: Mapped[list[str]] = mapped_column(JSON)
    # The legal ground (a court order's or an investigation's reference), for the DPO.
    reason: Mapped[str] = mapped_column(String(500))
    placed_at: Mapped[datetime]
    placed_by: Mapped[str] = mapped_column(String(100))
    ends_at: Mapped[datetime]
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(100))


class JobLease(Base):
    """A job's current runner: taken with a time limit and renewed while working, so that
    several server instances sharing a database run a job one at a time, and a crashed
    runner's lease runs out."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]


class HeldRecord(Model):
    """What a legal hold kept of an erased account: only the held categories, sealed with a
    key of the hold's own (the subject's key is destroyed with the account), and named by
    the subject's id alone. Destroyed, with its key, once the hold is no longer in force."""

    __tablename__ = "held_records"

    hold_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("legal_holds.id"), index=True)
    subject_id: Mapped[uuid.UUID]
    categories: Mapped[list[str]] = mapped_column(JSON)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    kept_at: Mapped[datetime]
