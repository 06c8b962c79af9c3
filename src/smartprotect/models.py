"""Every table, imported in one place for Alembic and the test-suite."""

from smartprotect.accounts.models import ApiToken, EmailToken, LoginAttempt, User, WebSession
from smartprotect.audit.models import AuditChainHead, AuditEvent
from smartprotect.commands.models import Command
from smartprotect.db import Base
from smartprotect.devices.models import (
    Device,
    DeviceLocation,
    EnrollmentCode,
    TheftIncident,
)
from smartprotect.fmd.models import FmdAccount, FmdItem, FmdSession
from smartprotect.mail.models import OutboxMessage
from smartprotect.privacy.consent.models import ConsentEvent
from smartprotect.privacy.keys.models import SubjectKey
from smartprotect.privacy.policy.models import (
    PolicyAcceptance,
    PolicyDecline,
    PolicyDocument,
    PolicyRevision,
)
from smartprotect.privacy.retention.models import HeldRecord, JobLease, LegalHold
from smartprotect.profile.models import ProfileItem

__all__ = [
    "ApiToken",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "Command",
    "ConsentEvent",
    "Device",
    "DeviceLocation",
    "EmailToken",
    "EnrollmentCode",
    "FmdAccount",
    "FmdItem",
    "FmdSession",
    "HeldRecord",
    "JobLease",
    "LegalHold",
    "LoginAttempt",
    "OutboxMessage",
    "PolicyAcceptance",
    "PolicyDecline",
    "PolicyDocument",
    "PolicyRevision",
    "ProfileItem",
    "SubjectKey",
    "TheftIncident",
    "User",
    "WebSession",
]
