"""Rights requests made by email (clause 7.1: where the Site offers no way, "by contacting
Smart Protect at e-mail"; clause 7.2: consent to mailings withdrawn "in the same way").

An operator who receives such a request records it (`smartprotect rights request ACTION
--email ADDRESS --ticket REF`). Nothing happens yet: the account's own address is mailed a
link, so a request sent in someone else's name (a forged sender, a guessed address) can
neither erase nor read their data. The owner opens the link, is shown what will happen, and
confirms; only then is it done: the account erased, everything held downloaded, or marketing
consent withdrawn. Both steps are audited, naming the operator's ticket.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartprotect.accounts import service as accounts
from smartprotect.accounts.models import EmailToken, EmailTokenPurpose, User
from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.errors import NotFound
from smartprotect.i18n import N_
from smartprotect.mail import marketing, render
from smartprotect.mail import service as mail
from smartprotect.mail.links import Links
from smartprotect.privacy.keys.master import Keyring
from smartprotect.privacy.rights import erasure
from smartprotect.security import hash_token

# Long enough for an owner who reads their mail weekly; the request lapses after that.
REQUEST_TTL = timedelta(days=7)


class Action(enum.StrEnum):
    ERASE = "erase"
    EXPORT = "export"
    WITHDRAW_MARKETING = "withdraw-marketing"


PURPOSE_OF = {
    Action.ERASE: EmailTokenPurpose.RIGHTS_ERASE,
    Action.EXPORT: EmailTokenPurpose.RIGHTS_EXPORT,
    Action.WITHDRAW_MARKETING: EmailTokenPurpose.RIGHTS_WITHDRAW_MARKETING,
}
ACTION_OF = {purpose: action for action, purpose in PURPOSE_OF.items()}


@dataclass(frozen=True)
class Pending:
    """A request waiting for its owner's confirmation."""

    action: Action
    user: User


def receive(
    *,
    session: Session,
    keyring: Keyring,
    email: str,
    action: Action,
    ticket: str,
    operator: str,
    clock: Clock,
    links: Links,
) -> bool:
    """Record a request made by email and mail the account's owner a link to confirm it;
    False if no account has the address (nothing is mailed, the operator answers)."""
    user = accounts.get_by_email(session=session, email=email)
    if user is None:
        return False
    raw = accounts.issue_email_token(
        session=session, user=user, purpose=PURPOSE_OF[action], ttl=REQUEST_TTL, clock=clock
    )
    audit.record_event(
        session=session, clock=clock, action=Tag.PRIVACY_REQUEST_RECEIVED, actor=operator,
        secret=keyring.secret, subject_id=user.id,
        details={"action": action.value, "ticket": ticket, "mailed": raw is not None},
    )  # fmt: skip
    if raw is None:
        return True  # a link for this request was mailed moments ago
    subject, body = render.render(
        "rights_request", language=user.language, action=action.value, ticket=ticket,
        link=links.to(f"/rights/{raw}", user.language), days=REQUEST_TTL.days,
    )  # fmt: skip
    mail.enqueue_for(session=session, user=user, subject=subject, body_text=body, clock=clock)
    return True


def pending(*, session: Session, raw: str, clock: Clock) -> Pending:
    """The request behind a link, if it still waits (for the page that asks to confirm)."""
    token = session.scalar(select(EmailToken).where(
        EmailToken.token_hash == hash_token(raw), EmailToken.purpose.in_(ACTION_OF)))  # fmt: skip
    user = session.get(User, token.user_id) if token is not None else None
    if user is None or token.used_at is not None or token.expires_at <= clock.now():
        raise NotFound(N_("This link is invalid, already used or expired."))
    return Pending(action=ACTION_OF[token.purpose], user=user)


def confirm(
    *, session: Session, keyring: Keyring, raw: str, clock: Clock
) -> tuple[Pending, erasure.ErasureReport | None]:
    """Do what the request asked, now that its owner confirmed it through the link mailed to
    them; for an erasure, also what was kept and why. An export is streamed by the caller."""
    request = pending(session=session, raw=raw, clock=clock)
    _token, user = accounts.consume_email_token(
        session=session, raw=raw, purpose=PURPOSE_OF[request.action], clock=clock
    )
    audit.record_event(
        session=session, clock=clock, action=Tag.PRIVACY_REQUEST_CONFIRMED,
        actor=accounts.user_actor(keyring=keyring, user=user), secret=keyring.secret,
        subject_id=user.id, details={"action": request.action.value},
    )  # fmt: skip
    if request.action is Action.ERASE:
        return request, erasure.erase_account(session=session, keyring=keyring, user=user,
                                              clock=clock)  # fmt: skip
    if request.action is Action.WITHDRAW_MARKETING:
        marketing.withdraw(session=session, keyring=keyring, user=user, clock=clock)
    return request, None
