"""Each subject's data key, stored only wrapped by the master key."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from smartprotect.db import Base


class SubjectKey(Base):
    __tablename__ = "subject_keys"

    # Not a foreign key: the row (without its key) outlives the account as proof of shredding.
    subject_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    master_key_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    destroyed_at: Mapped[datetime | None]
