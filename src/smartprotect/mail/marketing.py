"""Marketing mail (clause 3.2): sent only with the recipient's consent, and withdrawn in one
click (clause 7.2) from a link in every message, with RFC 8058's one-click headers.

The unsubscribe link carries the account id and a keyed hash of it: it needs no sign-in and
no database lookup to check, it never expires, and it does nothing but withdraw consent.
Consent is asked again when each message is delivered, so a withdrawal takes effect before
the next send, even for messages already queued.
"""

from __future__ import annotations

import hmac
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartprotect.accounts.models import User
from smartprotect.clock import Clock
from smartprotect.mail import service as mail
from smartprotect.mail.links import Links
from smartprotect.mail.models import OutboxMessage
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import Channel, Purpose
from smartprotect.privacy.keys.master import Keyring
from smartprotect.privacy.policy import service as policy
from smartprotect.security import keyed_hash

KIND = mail.MARKETING
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058's POST body and header value
_TOKEN_PURPOSE = "unsubscribe"  # noqa: S105 - a purpose name, not a secret
_TAG_LENGTH = 32


def unsubscribe_token(*, secret: str, user_id: uuid.UUID) -> str:
    tag = keyed_hash(secret=secret, purpose=_TOKEN_PURPOSE, value=str(user_id))[:_TAG_LENGTH]
    return f"{user_id.hex}.{tag}"


def user_id_of_token(*, secret: str, token: str) -> uuid.UUID | None:
    """The account an unsubscribe token was made for, or None if it was not made by us."""
    raw_id, _, tag = token.partition(".")
    try:
        user_id = uuid.UUID(hex=raw_id)
    except ValueError:
        return None
    expected = unsubscribe_token(secret=secret, user_id=user_id).partition(".")[2]
    return user_id if hmac.compare_digest(tag.encode(), expected.encode()) else None


def unsubscribe_url(*, secret: str, links: Links, user: User) -> str:
    """The link to the unsubscribe page, in the user's language."""
    token = unsubscribe_token(secret=secret, user_id=user.id)
    return links.to(f"/unsubscribe/{token}", user.language)


def may_send(*, session: Session, user_id: uuid.UUID) -> bool:
    return consent.is_permitted(
        session=session, subject_id=user_id, purpose=Purpose.MARKETING_EMAIL
    )


def enqueue(
    *,
    session: Session,
    keyring: Keyring,
    user: User,
    subject: str,
    body: str,
    clock: Clock,
    links: Links,
) -> OutboxMessage | None:
    """Queue a marketing message to a user who consented to it (None otherwise)."""
    if not may_send(session=session, user_id=user.id):
        return None
    url = unsubscribe_url(secret=keyring.secret, links=links, user=user)
    footer = _footer(user.language, url)
    return mail.enqueue(
        session=session, recipient=user.email, subject=subject, body_text=f"{body}\n\n{footer}",
        clock=clock, kind=KIND,
        headers={"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK},
        user_id=user.id,
    )  # fmt: skip


def _footer(language: str, url: str) -> str:
    from smartprotect.i18n import translations

    _ = translations(language).gettext
    return "-- \n" + _(
        "You receive this because you agreed to Smart Protect's mailings (clause 3.2). To stop "
        "them, open this link (clause 7.2): %(url)s"
    ) % {"url": url}


# Recipients queued per transaction: a mailing to every user must not hold SQLite's write
# lock (and so every check-in) for as long as it takes.
CAMPAIGN_BATCH = 500


def send_campaign(
    *,
    session: Session,
    keyring: Keyring,
    texts: dict[str, tuple[str, str]],
    clock: Clock,
    links: Links,
    after: uuid.UUID | None = None,
    limit: int = CAMPAIGN_BATCH,
) -> tuple[int, uuid.UUID | None]:
    """Queue a mailing, in each recipient's language, to the next `limit` verified accounts
    (by id, after `after`) that consent now; returns how many were queued and the last id
    looked at (None when there are no more). The caller commits between batches."""
    query = select(User).where(User.email_verified_at.is_not(None)).order_by(User.id)
    if after is not None:
        query = query.where(User.id > after)
    users = list(session.scalars(query.limit(limit)))
    queued = 0
    for user in users:
        subject, body = texts.get(user.language) or texts["en"]
        if enqueue(session=session, keyring=keyring, user=user, subject=subject, body=body,
                   clock=clock, links=links):  # fmt: skip
            queued += 1
    return queued, (users[-1].id if len(users) == limit else None)


def still_wanted(*, session: Session, secret: str, message: OutboxMessage) -> bool:
    """Whether a queued marketing message may still go: consent is asked again at sending."""
    url = (message.headers or {}).get("List-Unsubscribe", "")
    token = url.strip("<>").rsplit("/", 1)[-1]
    user_id = user_id_of_token(secret=secret, token=token)
    return user_id is not None and may_send(session=session, user_id=user_id)


def unsubscribe(
    *,
    session: Session,
    keyring: Keyring,
    token: str,
    clock: Clock,
    user_agent: str | None = None,
    client_ip: str | None = None,
) -> bool:
    """Withdraw marketing-mail consent for the token's account; False if the token is not
    ours or the account is gone. Withdrawing twice is harmless."""
    user_id = user_id_of_token(secret=keyring.secret, token=token)
    user = session.get(User, user_id) if user_id else None
    if user is None:
        return False
    return withdraw(session=session, keyring=keyring, user=user, clock=clock,
                    user_agent=user_agent, client_ip=client_ip)  # fmt: skip


def withdraw(
    *,
    session: Session,
    keyring: Keyring,
    user: User,
    clock: Clock,
    user_agent: str | None = None,
    client_ip: str | None = None,
) -> bool:
    """Withdraw the account's consent to marketing mail, through a link mailed to it (an
    unsubscribe link, or a request made by email); False if no revision is in force."""
    revision = policy.in_force(session=session)
    if revision is None:
        return False
    consent.change(
        session=session, keyring=keyring, subject_id=user.id, purpose=Purpose.MARKETING_EMAIL,
        granted=False, policy_document_id=policy.document_of(revision, user.language).id,
        channel=Channel.EMAIL_LINK, actor=consent_actor(keyring, user), clock=clock,
        user_agent=user_agent, client_ip=client_ip,
    )  # fmt: skip
    return True


def consent_actor(keyring: Keyring, user: User) -> str:
    from smartprotect.audit import service as audit

    return audit.user_actor(secret=keyring.secret, user_id=user.id)
