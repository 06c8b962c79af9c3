"""Live evidence for the clause map: short facts computed from the database.

Each function takes `session` and `clock` (keyword-only) and returns a `Fact`: an English
gettext msgid with named placeholders and their values, translated where it is shown.
`EVIDENCE` maps the names used in `smartprotect.privacy.clauses` to the functions.
Nothing here writes to the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from smartprotect.accounts.models import ApiToken, EmailToken, LoginAttempt, User, WebSession
from smartprotect.audit import service as audit
from smartprotect.clock import Clock
from smartprotect.i18n import N_
from smartprotect.mail.models import OutboxMessage, OutboxStatus
from smartprotect.privacy.consent.models import ConsentAction, ConsentEvent, Purpose
from smartprotect.privacy.keys.models import SubjectKey
from smartprotect.privacy.policy import service as policy
from smartprotect.privacy.policy.models import PolicyAcceptance
from smartprotect.privacy.retention.rules import RETENTION

# Clause 2.4: personal data is kept 1 year from when it was provided.
# Tables whose rows are evidence: the database itself must refuse UPDATE and DELETE on them.
APPEND_ONLY_TABLES = (
    "audit_events",
    "consent_events",
    "policy_acceptances",
    "policy_declines",
    "policy_documents",
    "policy_revisions",
)


@dataclass(frozen=True)
class Fact:
    """One line of evidence: `message` % `params`, after translating the message (and the
    values of the params named in `translated`, which are msgids too)."""

    message: str
    params: Mapping[str, object] = field(default_factory=dict)
    translated: tuple[str, ...] = ()

    def render(self, gettext: Callable[[str], str]) -> str:
        if not self.params:
            return gettext(self.message)
        values = {
            name: gettext(str(value)) if name in self.translated else value
            for name, value in self.params.items()
        }
        return gettext(self.message) % values


Evidence = Callable[..., Fact]


def _count(session: Session, model, *conditions) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0


def _moment(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


# -- the revision in force -----------------------------------------------------------------
# The one place that knows how policy revisions and acceptances are stored: when they change,
# adapt `revision_in_force` and nothing else.


@dataclass(frozen=True)
class RevisionInForce:
    version: str
    published_at: datetime
    languages: tuple[str, ...]
    # Accounts whose holder has not accepted this revision (not answered, or declined).
    users_not_accepted: int


def revision_in_force(*, session: Session) -> RevisionInForce | None:
    """The revision in force and how many users have not accepted it; None before any."""
    revision = policy.in_force(session=session)
    if revision is None:
        return None
    pending = policy.not_accepted(session=session, subject_ids=select(User.id))
    not_accepted = session.scalar(select(func.count()).select_from(pending.subquery())) or 0
    return RevisionInForce(
        version=revision.version,
        published_at=revision.published_at,
        languages=tuple(sorted(document.language for document in revision.documents)),
        users_not_accepted=not_accepted,
    )


NO_REVISION = N_("No revision of the Privacy Policy has been published.")


def policy_in_force(*, session: Session, clock: Clock) -> Fact:
    revision = revision_in_force(session=session)
    if revision is None:
        return Fact(NO_REVISION)
    return Fact(
        N_("Revision in force: %(version)s, posted %(posted)s, texts: %(languages)s"),
        {
            "version": revision.version,
            "posted": _moment(revision.published_at),
            "languages": ", ".join(revision.languages),
        },
    )


def users_not_accepted(*, session: Session, clock: Clock) -> Fact:
    revision = revision_in_force(session=session)
    if revision is None:
        return Fact(NO_REVISION)
    return Fact(
        N_("Users who have not accepted revision %(version)s: %(count)s of %(total)s"),
        {
            "version": revision.version,
            "count": revision.users_not_accepted,
            "total": _count(session, User),
        },
    )


# -- accounts ------------------------------------------------------------------------------


def users(*, session: Session, clock: Clock) -> Fact:
    return Fact(
        N_("Accounts: %(count)s, of them with a confirmed email address: %(verified)s"),
        {
            "count": _count(session, User),
            "verified": _count(session, User, User.email_verified_at.is_not(None)),
        },
    )


# -- consents ------------------------------------------------------------------------------


def consent_states(*, session: Session) -> dict[Purpose, dict[ConsentAction, int]]:
    """How many subjects' latest event per purpose is a grant, and how many a withdrawal.

    The same derivation as `consent.service.current_state`, aggregated: the event with the
    highest id for a subject and purpose is its state.
    """
    latest = (
        select(func.max(ConsentEvent.id).label("id"))
        .group_by(ConsentEvent.subject_id, ConsentEvent.purpose)
        .subquery()
    )
    rows = session.execute(
        select(ConsentEvent.purpose, ConsentEvent.action, func.count())
        .join(latest, latest.c.id == ConsentEvent.id)
        .group_by(ConsentEvent.purpose, ConsentEvent.action)
    ).all()
    states = {purpose: dict.fromkeys(ConsentAction, 0) for purpose in Purpose}
    for purpose, action, count in rows:
        states[Purpose(purpose)][ConsentAction(action)] = count
    return states


def _consent(purpose: Purpose) -> Evidence:
    def evidence(*, session: Session, clock: Clock) -> Fact:
        state = consent_states(session=session)[purpose]
        return Fact(
            N_(
                "Consent %(purpose)s: in force for %(granted)s, "
                "withdrawn or refused by %(withdrawn)s"
            ),
            {
                "purpose": purpose.value,
                "granted": state[ConsentAction.GRANT],
                "withdrawn": state[ConsentAction.WITHDRAW],
            },
        )

    evidence.__name__ = f"consent_{purpose.value}"
    evidence.__doc__ = f"Subjects whose consent {purpose.value} is in force, and not."
    return evidence


# -- retention (clause 2.4) ----------------------------------------------------------------


def _shredded_subjects():
    return select(SubjectKey.subject_id).where(SubjectKey.destroyed_at.is_not(None))


def _personal_data_sources():
    """Where personal data is held, each with the time it was provided.

    Ledger rows and acceptances count while their subject's key lives; once it is shredded
    they are pseudonymous evidence. The audit log names subjects only by pseudonym.
    """
    return (
        ("users", User.created_at, ()),
        ("web_sessions", WebSession.created_at, ()),
        ("email_tokens", EmailToken.created_at, ()),
        ("api_tokens", ApiToken.created_at, ()),
        ("login_attempts", LoginAttempt.attempted_at, ()),
        ("outbox_messages", OutboxMessage.created_at, ()),
        (
            "consent_events",
            ConsentEvent.occurred_at,
            (ConsentEvent.subject_id.not_in(_shredded_subjects()),),
        ),
        (
            "policy_acceptances",
            PolicyAcceptance.accepted_at,
            (PolicyAcceptance.subject_id.not_in(_shredded_subjects()),),
        ),
    )


def oldest_personal_data(*, session: Session, clock: Clock) -> Fact:
    oldest: tuple[datetime, str] | None = None
    for table, column, conditions in _personal_data_sources():
        moment = session.scalar(select(func.min(column)).where(*conditions))
        if moment is not None and (oldest is None or moment < oldest[0]):
            oldest = (moment, table)
    if oldest is None:
        return Fact(N_("No personal data is held."))
    moment, table = oldest
    return Fact(
        N_("Oldest personal data held: %(when)s, in %(table)s (age in days: %(days)s)"),
        {"when": _moment(moment), "table": table, "days": (clock.now() - moment).days},
    )


def accounts_past_retention(*, session: Session, clock: Clock) -> Fact:
    return Fact(
        N_("Accounts registered more than 1 year ago: %(count)s"),
        {"count": _count(session, User, User.created_at < clock.now() - RETENTION)},
    )


# -- protection (clause 5.1) ---------------------------------------------------------------

_CHAIN_REASONS = {
    "row missing": N_("a row is missing"),
    "link to the previous row broken": N_("the link to the previous row is broken"),
    "content does not match its hash": N_("its content does not match its hash"),
    "rows at the end of the chain are missing": N_("rows at the end of the chain are missing"),
}


def audit_chain(*, session: Session, clock: Clock) -> Fact:
    result = audit.verify_chain(session=session)
    if result.ok:
        return Fact(
            N_("Audit log rows verified: %(rows)s; hash chain intact; head %(head)s"),
            {"rows": result.checked, "head": result.head_hash[:16]},
        )
    reason = result.reason or ""
    return Fact(
        N_("Audit log: hash chain BROKEN at row %(seq)s: %(reason)s"),
        {"seq": result.first_bad_seq, "reason": _CHAIN_REASONS.get(reason, reason)},
        translated=("reason",) if reason in _CHAIN_REASONS else (),
    )


def _guarded_tables(session: Session) -> set[str]:
    """Tables with the triggers of `smartprotect.migrations.append_only.protect`."""
    if session.get_bind().dialect.name == "postgresql":
        names = session.scalars(
            text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D'")
        ).all()
        return {
            name.removesuffix("_append_only") for name in names if name.endswith("_append_only")
        }
    names = set(session.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
    return {
        name.removesuffix("_no_update")
        for name in names
        if name.endswith("_no_update") and name.removesuffix("_no_update") + "_no_delete" in names
    }


def append_only(*, session: Session, clock: Clock) -> Fact:
    guarded = _guarded_tables(session)
    missing = [table for table in APPEND_ONLY_TABLES if table not in guarded]
    if missing:
        return Fact(
            N_("Evidence tables NOT guarded against UPDATE and DELETE: %(tables)s"),
            {"tables": ", ".join(missing)},
        )
    return Fact(
        N_("Tables the database keeps append-only: %(tables)s"),
        {"tables": ", ".join(sorted(guarded))},
    )


def subject_keys(*, session: Session, clock: Clock) -> Fact:
    return Fact(
        N_("Subject data keys: %(live)s live, %(shredded)s shredded"),
        {
            "live": _count(session, SubjectKey, SubjectKey.destroyed_at.is_(None)),
            "shredded": _count(session, SubjectKey, SubjectKey.destroyed_at.is_not(None)),
        },
    )


# -- mail ----------------------------------------------------------------------------------


def outbox(*, session: Session, clock: Clock) -> Fact:
    return Fact(
        N_("Outbox: waiting to be sent %(pending)s, undeliverable %(failed)s"),
        {
            "pending": _count(session, OutboxMessage, OutboxMessage.status == OutboxStatus.PENDING),
            "failed": _count(session, OutboxMessage, OutboxMessage.status == OutboxStatus.FAILED),
        },
    )


EVIDENCE: dict[str, Evidence] = {
    "users": users,
    "policy_in_force": policy_in_force,
    "users_not_accepted": users_not_accepted,
    **{f"consent.{purpose.value}": _consent(purpose) for purpose in Purpose},
    "oldest_personal_data": oldest_personal_data,
    "accounts_past_retention": accounts_past_retention,
    "audit_chain": audit_chain,
    "append_only": append_only,
    "subject_keys": subject_keys,
    "outbox": outbox,
}
