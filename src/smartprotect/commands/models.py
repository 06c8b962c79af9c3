"""Commands to devices and their explicit state machine."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from smartprotect.db import Model, str_enum
from smartprotect.devices.models import devices_of_subjects
from smartprotect.privacy.retention.rules import Category, Rule, register


class Kind(enum.StrEnum):
    LOCATE = "locate"
    RING = "ring"
    LOCK = "lock"
    UNLOCK = "unlock"
    WIPE = "wipe"


class State(enum.StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


# A delivered command the device has not reported on is handed out again after this: the
# answer that carried it may have been lost (the device runs a command id once only).
REDELIVER_AFTER = timedelta(minutes=1)
TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED, State.EXPIRED})
# queued -> delivered -> running -> succeeded | failed; queued -> cancelled | expired;
# delivered -> expired (never started in time). A device may skip "running".
TRANSITIONS: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.DELIVERED, State.CANCELLED, State.EXPIRED}),
    State.DELIVERED: frozenset({State.RUNNING, State.SUCCEEDED, State.FAILED, State.EXPIRED}),
    State.RUNNING: frozenset({State.SUCCEEDED, State.FAILED}),
}


class Command(Model):
    __tablename__ = "commands"
    __table_args__ = (Index("ix_commands_device_state", "device_id", "state"),)

    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    kind: Mapped[Kind] = mapped_column(str_enum(Kind, 16))
    # Parameters (a lock message, a contact phone) are the owner's words: sealed.
    sealed_params: Mapped[bytes | None]
    state: Mapped[State] = mapped_column(str_enum(State, 16))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    # When it was last handed to the device: again after `REDELIVER_AFTER` without a report.
    sent_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # What the device reported, free of personal data (counts, error codes).
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    issued_by: Mapped[str] = mapped_column(String(100))


# A command's parameters (a lock screen's message and contact phone) are information the
# owner gave (clause 2.3.7).
register(Rule(Category.OTHER, Command, Command.issued_at,
              lambda ids: Command.device_id.in_(devices_of_subjects(ids))))  # fmt: skip
