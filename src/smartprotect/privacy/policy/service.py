"""Publishing policy revisions and recording that a user accepted one."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.errors import Conflict, ValidationFailed
from smartprotect.i18n import LANGUAGES, N_
from smartprotect.privacy.consent.models import Channel
from smartprotect.privacy.keys.master import Keyring
from smartprotect.privacy.policy.models import PolicyAcceptance, PolicyDocument

MAX_VERSION_LENGTH = 64


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def publish(
    *, session: Session, version: str, language: str, text: str, clock: Clock
) -> tuple[PolicyDocument, bool]:
    """Publish one language's text of a revision; republishing the same text is a no-op."""
    version = version.strip()
    errors: dict[str, str] = {}
    if not version or len(version) > MAX_VERSION_LENGTH:
        errors["version"] = N_("Give a version of 1 to 64 characters.")
    if language not in LANGUAGES:
        errors["language"] = N_("Choose one of the supported languages.")
    if not text.strip():
        errors["text"] = N_("The policy text is empty.")
    if errors:
        raise ValidationFailed(errors)

    digest = sha256_of(text)
    existing = session.scalar(
        select(PolicyDocument).where(
            PolicyDocument.version == version, PolicyDocument.language == language
        )
    )
    if existing is not None:
        if existing.sha256 != digest:
            # Published text is a record of what users agreed to; it never changes.
            raise Conflict(
                N_("Version %(version)s (%(language)s) is already published with other text."),
                version=version,
                language=language,
            )
        return existing, False
    document = PolicyDocument(
        version=version, language=language, text=text, sha256=digest, published_at=clock.now()
    )
    session.add(document)
    session.flush()
    return document, True


def in_force(*, session: Session, language: str) -> PolicyDocument | None:
    """The revision in force (the latest published), in the reader's language if it has one."""
    # A revision takes effect when its first text is published; a translation published
    # later must not bring an older revision back into force.
    first_published = func.min(PolicyDocument.published_at)
    version = session.scalar(
        select(PolicyDocument.version)
        .group_by(PolicyDocument.version)
        .order_by(first_published.desc())
        .limit(1)
    )
    if version is None:
        return None
    latest = session.scalar(
        select(PolicyDocument)
        .where(PolicyDocument.version == version)
        .order_by(PolicyDocument.published_at)
        .limit(1)
    )
    assert latest is not None
    if latest.language == language:
        return latest
    same_version = session.scalar(
        select(PolicyDocument).where(
            PolicyDocument.version == latest.version, PolicyDocument.language == language
        )
    )
    return same_version or latest


def get_document(*, session: Session, document_id: uuid.UUID) -> PolicyDocument | None:
    return session.get(PolicyDocument, document_id)


def record_acceptance(
    *,
    session: Session,
    keyring: Keyring,
    subject_id: uuid.UUID,
    document: PolicyDocument,
    channel: Channel,
    actor: str,
    clock: Clock,
) -> PolicyAcceptance:
    """Record, and audit, that a user accepted a revision."""
    acceptance = PolicyAcceptance(
        subject_id=subject_id,
        document_id=document.id,
        channel=channel.value,
        accepted_at=clock.now(),
    )
    session.add(acceptance)
    session.flush()
    audit.record_event(
        session=session,
        clock=clock,
        action=Tag.POLICY_ACCEPTED,
        actor=actor,
        secret=keyring.secret,
        subject_id=subject_id,
        details={"version": document.version, "language": document.language},
    )
    return acceptance
