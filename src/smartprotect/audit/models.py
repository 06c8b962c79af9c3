"""The audit log: append-only events, each chained to the one before by its hash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from smartprotect.db import Base

GENESIS_HASH = "0" * 64


class AuditEvent(Base):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime]
    # Who acted: "user:<pseudonym>", "system", "cli", "staff:<id>"...
    actor: Mapped[str] = mapped_column(String(100))
    # "source:subject:action", e.g. "account:user:login".
    action: Mapped[str] = mapped_column(String(100), index=True)
    # Whom it concerns, as a keyed hash of their id: linkable, but names no one by itself.
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    purpose: Mapped[str | None] = mapped_column(String(40))
    # Details free of personal data...
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # ...and those with it, sealed with the subject's key (unreadable once it is shredded).
    sealed_details: Mapped[bytes | None] = mapped_column(LargeBinary)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditChainHead(Base):
    """One row: the last sequence number and hash. Updating it first serialises writers."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
