"""The user's rights over their data (clauses 5.4, 7.1): recorded as they are exercised."""

from __future__ import annotations

from sqlalchemy.orm import Session

from smartprotect.accounts.models import User
from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.privacy.keys.master import Keyring


def record_export(
    *, session: Session, keyring: Keyring, user: User, clock: Clock, form: str
) -> None:
    """Audit that the user downloaded everything held about them, and in which form."""
    audit.record_event(
        session=session, clock=clock, action=Tag.PRIVACY_EXPORTED, secret=keyring.secret,
        actor=audit.user_actor(secret=keyring.secret, user_id=user.id), subject_id=user.id,
        details={"form": form},
    )  # fmt: skip
