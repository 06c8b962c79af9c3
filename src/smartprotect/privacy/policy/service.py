"""Publishing policy revisions (clauses 8.1-8.3) and recording users' answers to them."""

from __future__ import annotations

import enum
import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import date

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from smartprotect.accounts.models import User
from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.errors import Conflict, ValidationFailed
from smartprotect.i18n import LANGUAGES, N_
from smartprotect.mail import render
from smartprotect.mail import service as mail
from smartprotect.mail.links import Links
from smartprotect.privacy.consent.models import Channel
from smartprotect.privacy.keys.master import Keyring
from smartprotect.privacy.policy.models import (
    PolicyAcceptance,
    PolicyDecline,
    PolicyDocument,
    PolicyRevision,
)

MAX_VERSION_LENGTH = 64
# Versions are numbers separated by dots or dashes ("2017-06-15", "2.1"), so "newer" is
# well defined: compared number by number.
VERSION_PATTERN = re.compile(r"\d+(?:[.-]\d+)*")
POLICY_UPDATED_MAIL = "policy_updated"
DATE_VERSION = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


class Status(enum.StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    PENDING = "pending"


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.split(r"[.-]", version))


def _revision_date(version: str, given: date | None, clock: Clock) -> date:
    if given is not None:
        return given
    match = DATE_VERSION.fullmatch(version)
    if match:
        try:
            return date(*(int(part) for part in match.groups()))
        except ValueError:
            pass
    return clock.now().date()


def publish_revision(
    *,
    session: Session,
    keyring: Keyring,
    version: str,
    texts: Mapping[str, str],
    clock: Clock,
    revision_date: date | None = None,
) -> tuple[PolicyRevision, bool]:
    """Publish a revision in every site language at once; it is in force from now.

    Publishing the same version with the same texts again changes nothing; with other
    texts it is refused: what users agreed to is never rewritten.
    """
    version = version.strip()
    errors: dict[str, str] = {}
    if not VERSION_PATTERN.fullmatch(version) or len(version) > MAX_VERSION_LENGTH:
        errors["version"] = N_(
            "Give the version as numbers separated by dots or dashes, e.g. 2017-06-15 or 2.1."
        )
    missing = [lang for lang in LANGUAGES if not (texts.get(lang) or "").strip()]
    if missing:
        errors["texts"] = N_("A revision needs its text in every language of the site: %s.") % (
            ", ".join(LANGUAGES)
        )
    unknown = set(texts) - set(LANGUAGES)
    if unknown:
        errors["language"] = N_("Choose one of the supported languages.")
    if errors:
        raise ValidationFailed(errors)

    existing = session.scalar(select(PolicyRevision).where(PolicyRevision.version == version))
    if existing is not None:
        published = {doc.language: doc.sha256 for doc in existing.documents}
        if published == {lang: sha256_of(texts[lang]) for lang in LANGUAGES}:
            return existing, False
        raise Conflict(
            N_("Version %(version)s is already published with other text."), version=version
        )
    current = in_force(session=session)
    if current is not None and version_key(version) <= version_key(current.version):
        raise ValidationFailed(
            {
                "version": N_(
                    "A new revision must have a version newer than the one in force (%s)."
                )
                % current.version
            }
        )

    revision = PolicyRevision(
        version=version,
        revision_date=_revision_date(version, revision_date, clock),
        published_at=clock.now(),
    )
    session.add(revision)
    session.flush()
    for language in LANGUAGES:
        session.add(
            PolicyDocument(
                revision_id=revision.id,
                language=language,
                text=texts[language],
                sha256=sha256_of(texts[language]),
            )
        )
    session.flush()
    session.refresh(revision)
    audit.record_event(
        session=session,
        clock=clock,
        action=Tag.POLICY_PUBLISHED,
        actor=audit.CLI,
        secret=keyring.secret,
        details={
            "version": version,
            "sha256": {doc.language: doc.sha256 for doc in revision.documents},
        },
    )
    return revision, True


def in_force(*, session: Session) -> PolicyRevision | None:
    """The revision in force: the one posted last (clause 8.2)."""
    return session.scalar(
        select(PolicyRevision).order_by(PolicyRevision.published_at.desc()).limit(1)
    )


def document_of(revision: PolicyRevision, language: str) -> PolicyDocument:
    """A revision's text in a language (or, for a revision that lacks it, another one)."""
    for document in revision.documents:
        if document.language == language:
            return document
    return revision.documents[0]


def document_in_force(*, session: Session, language: str) -> PolicyDocument | None:
    revision = in_force(session=session)
    return document_of(revision, language) if revision is not None else None


def revisions(*, session: Session) -> list[PolicyRevision]:
    """Every published revision, newest first."""
    return list(
        session.scalars(select(PolicyRevision).order_by(PolicyRevision.published_at.desc()))
    )


def get_revision(*, session: Session, version: str) -> PolicyRevision | None:
    return session.scalar(select(PolicyRevision).where(PolicyRevision.version == version))


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
    """Record, and audit, that a user accepted a revision (in the text they read)."""
    acceptance = PolicyAcceptance(
        subject_id=subject_id, document_id=document.id, channel=channel.value,
        accepted_at=clock.now(),
    )  # fmt: skip
    _record_answer(session, keyring, acceptance, Tag.POLICY_ACCEPTED, document, actor, clock)
    return acceptance


def record_decline(
    *,
    session: Session,
    keyring: Keyring,
    subject_id: uuid.UUID,
    document: PolicyDocument,
    channel: Channel,
    actor: str,
    clock: Clock,
) -> PolicyDecline:
    """Record, and audit, that a user declined a revision (clause 8.3)."""
    decline = PolicyDecline(
        subject_id=subject_id, document_id=document.id, channel=channel.value,
        declined_at=clock.now(),
    )  # fmt: skip
    _record_answer(session, keyring, decline, Tag.POLICY_DECLINED, document, actor, clock)
    return decline


def _record_answer(session, keyring, answer, tag, document, actor, clock) -> None:
    session.add(answer)
    session.flush()
    audit.record_event(
        session=session,
        clock=clock,
        action=tag,
        actor=actor,
        secret=keyring.secret,
        subject_id=answer.subject_id,
        details={"version": document.version, "language": document.language},
    )


def status(*, session: Session, subject_id: uuid.UUID) -> Status:
    """Whether a user has accepted, declined or not yet answered the revision in force."""
    revision = in_force(session=session)
    if revision is None:
        return Status.ACCEPTED
    documents = select(PolicyDocument.id).where(PolicyDocument.revision_id == revision.id)
    accepted = session.scalar(
        select(PolicyAcceptance.accepted_at)
        .where(
            PolicyAcceptance.subject_id == subject_id,
            PolicyAcceptance.document_id.in_(documents),
        )
        .order_by(PolicyAcceptance.accepted_at.desc())
        .limit(1)
    )
    declined = session.scalar(
        select(PolicyDecline.declined_at)
        .where(PolicyDecline.subject_id == subject_id, PolicyDecline.document_id.in_(documents))
        .order_by(PolicyDecline.declined_at.desc())
        .limit(1)
    )
    if accepted is None and declined is None:
        return Status.PENDING
    if declined is None or (accepted is not None and accepted >= declined):
        return Status.ACCEPTED
    return Status.DECLINED


def not_accepted(*, session: Session, subject_ids: Select) -> Select:
    """Of the given subject ids (a one-column select), those who have not accepted the
    revision in force."""
    revision = in_force(session=session)
    column = subject_ids.selected_columns[0]
    if revision is None:
        return subject_ids.where(False)
    accepted = exists(
        select(PolicyAcceptance.id)
        .join(PolicyDocument, PolicyDocument.id == PolicyAcceptance.document_id)
        .where(
            PolicyDocument.revision_id == revision.id,
            PolicyAcceptance.subject_id == column,
        )
    )
    return subject_ids.where(~accepted)


def notify_users(*, session: Session, revision: PolicyRevision, clock: Clock, links: Links) -> int:
    """Mail every user that a new revision was posted (transactional: it concerns them all)."""
    count = 0
    for user in session.scalars(select(User).order_by(User.created_at)):
        subject, body = render.render(
            "policy_updated",
            language=user.language,
            version=revision.version,
            link=links.to("/privacy/review", user.language),
        )
        mail.enqueue_for(
            session=session,
            user=user,
            subject=subject,
            body_text=body,
            clock=clock,
            kind=POLICY_UPDATED_MAIL,
        )
        count += 1
    return count
