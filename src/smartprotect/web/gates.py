"""Who may see a page: signed in, and (clause 8.1) aware of the policy revision in force."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from smartprotect.accounts.models import User
from smartprotect.deps import DbSession, OptionalUser
from smartprotect.privacy.policy import service as policy


class LoginRequired(Exception):
    """A page needs a signed-in user; the browser is sent to the sign-in page."""


class PolicyReviewRequired(Exception):
    """A new policy revision is in force and this user has not answered it yet."""


def require_signed_in(user: OptionalUser) -> User:
    if user is None:
        raise LoginRequired
    return user


def require_user(user: OptionalUser, db: DbSession) -> User:
    """A signed-in user who has seen the revision in force (accepted or declined it)."""
    if user is None:
        raise LoginRequired
    if policy.status(session=db, subject_id=user.id) is policy.Status.PENDING:
        raise PolicyReviewRequired
    return user


SignedIn = Annotated[User, Depends(require_signed_in)]
SignedInUser = Annotated[User, Depends(require_user)]
