"""Every table, imported in one place for Alembic and the test-suite."""

from smartprotect.accounts.models import ApiToken, EmailToken, LoginAttempt, User, WebSession
from smartprotect.db import Base
from smartprotect.mail.models import OutboxMessage
from smartprotect.privacy.consent.models import ConsentEvent
from smartprotect.privacy.policy.models import PolicyAcceptance, PolicyDocument

__all__ = [
    "ApiToken",
    "Base",
    "ConsentEvent",
    "EmailToken",
    "LoginAttempt",
    "OutboxMessage",
    "PolicyAcceptance",
    "PolicyDocument",
    "User",
    "WebSession",
]
