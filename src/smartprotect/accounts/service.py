"""Registering, verifying, signing in and out, password resets and API tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from smartprotect.accounts.models import (
    ApiToken,
    EmailToken,
    EmailTokenPurpose,
    LoginAttempt,
    User,
    WebSession,
)
from smartprotect.accounts.schemas import RegistrationConsents, UserCreate
from smartprotect.clock import Clock
from smartprotect.errors import (
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
    ValidationFailed,
)
from smartprotect.i18n import DEFAULT_LANGUAGE, N_
from smartprotect.mail import render
from smartprotect.mail import service as mail
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import Channel, ConsentAction
from smartprotect.privacy.policy import service as policy
from smartprotect.security import (
    hash_password,
    hash_token,
    keyed_hash,
    new_token,
    password_needs_rehash,
    verify_password,
)

VERIFY_EMAIL_TTL = timedelta(hours=48)
RESET_PASSWORD_TTL = timedelta(minutes=60)
SESSION_MAX_AGE = timedelta(days=14)
# Touching last_seen_at on every request would make every page view a write.
SESSION_TOUCH_INTERVAL = timedelta(minutes=5)

LOGIN_THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_CLIENT = 20

API_TOKEN_PREFIX = "spat_"  # noqa: S105 - marks our tokens for secret scanners
API_TOKEN_DISPLAY_CHARS = 12
API_TOKENS_PER_USER = 20


@dataclass(frozen=True)
class Links:
    """Where links in mail point: the site's base URL and the reader's language prefix."""

    base_url: str

    def to(self, path: str, language: str) -> str:
        prefix = "" if language == DEFAULT_LANGUAGE else f"/{language}"
        return f"{self.base_url.rstrip('/')}{prefix}{path}"


# -- registration and e-mail verification --------------------------------------------------


def get_by_email(*, session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


POLICY_CHANGED = N_(
    "The privacy policy changed while you were reading it. Please read the revision in force "
    "and accept it."
)


def registration_consent_errors(
    *, session: Session, language: str, consents: RegistrationConsents
) -> dict[str, str]:
    """What is missing from the registration's acceptance and consents, by field."""
    document = policy.in_force(session=session, language=language)
    if document is None:
        raise PermissionDenied(
            N_("Registration is closed until Smart Protect publishes its privacy policy.")
        )
    errors: dict[str, str] = {}
    given = policy.get_document(session=session, document_id=consents.policy_document_id)
    if given is None or given.version != document.version:
        errors["policy"] = POLICY_CHANGED
    if not consents.accept_policy:
        errors["accept_policy"] = N_("To register you must accept the privacy policy.")
    if not consents.consent_processing:
        errors["consent_processing"] = N_(
            "The service cannot work without this consent (clause 3.1 of the policy)."
        )
    return errors


def register(
    *,
    session: Session,
    data: UserCreate,
    consents: RegistrationConsents,
    channel: Channel,
    clock: Clock,
    links: Links,
    user_agent: str | None = None,
) -> User | None:
    """Create an account with its policy acceptance and consents, and mail a verification link.

    If the address already has an account, that account's owner is mailed instead and None
    is returned, so the form does not tell strangers which addresses are registered.
    """
    errors = registration_consent_errors(session=session, language=data.language, consents=consents)
    if errors:
        raise ValidationFailed(errors)
    given = policy.get_document(session=session, document_id=consents.policy_document_id)
    assert given is not None

    existing = get_by_email(session=session, email=data.email)
    if existing is not None:
        subject, body = render.render(
            "account_exists",
            language=existing.language,
            login_link=links.to("/login", existing.language),
            reset_link=links.to("/password-reset", existing.language),
        )
        mail.enqueue(
            session=session, recipient=existing.email, subject=subject, body_text=body, clock=clock
        )
        return None

    now = clock.now()
    user = User(
        email=data.email,
        phone=data.phone,
        password_hash=hash_password(data.password),
        last_name=data.last_name,
        first_name=data.first_name,
        patronymic=data.patronymic,
        language=data.language,
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    session.flush()

    policy.record_acceptance(
        session=session, user_id=user.id, document=given, channel=channel, clock=clock
    )
    granted = {
        **dict.fromkeys(consent.REQUIRED_AT_REGISTRATION, True),
        consent.Purpose.MARKETING_EMAIL: consents.marketing_email,
        consent.Purpose.MARKETING_SMS: consents.marketing_sms,
    }
    for purpose, is_granted in granted.items():
        if is_granted:
            consent.record(
                session=session,
                user_id=user.id,
                purpose=purpose,
                action=ConsentAction.GRANT,
                policy_document_id=given.id,
                channel=channel,
                clock=clock,
                user_agent=user_agent,
            )
    _send_verification(session=session, user=user, clock=clock, links=links)
    return user


def _issue_email_token(
    *, session: Session, user: User, purpose: EmailTokenPurpose, ttl: timedelta, clock: Clock
) -> str:
    # A new link replaces the old ones, so only the latest mail works.
    session.execute(
        delete(EmailToken).where(
            EmailToken.user_id == user.id,
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
        )
    )
    raw = new_token()
    now = clock.now()
    session.add(
        EmailToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_token(raw),
            email=user.email,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    session.flush()
    return raw


def _send_verification(*, session: Session, user: User, clock: Clock, links: Links) -> None:
    raw = _issue_email_token(
        session=session,
        user=user,
        purpose=EmailTokenPurpose.VERIFY_EMAIL,
        ttl=VERIFY_EMAIL_TTL,
        clock=clock,
    )
    subject, body = render.render(
        "verify_email",
        language=user.language,
        link=links.to(f"/verify-email/{raw}", user.language),
        hours=int(VERIFY_EMAIL_TTL.total_seconds() // 3600),
    )
    mail.enqueue(
        session=session, recipient=user.email, subject=subject, body_text=body, clock=clock
    )


def resend_verification(*, session: Session, email: str, clock: Clock, links: Links) -> None:
    """Mail a fresh verification link to an unverified account, silently doing nothing else."""
    user = get_by_email(session=session, email=email)
    if user is not None and not user.is_verified:
        _send_verification(session=session, user=user, clock=clock, links=links)


def _consume_email_token(
    *, session: Session, raw: str, purpose: EmailTokenPurpose, clock: Clock
) -> tuple[EmailToken, User]:
    token = session.scalar(
        select(EmailToken)
        .where(EmailToken.token_hash == hash_token(raw), EmailToken.purpose == purpose)
        .with_for_update()
    )
    now = clock.now()
    if token is None or token.used_at is not None or token.expires_at <= now:
        raise NotFound(N_("This link is invalid, already used or expired."))
    user = session.get(User, token.user_id)
    if user is None or user.email != token.email:
        raise NotFound(N_("This link is invalid, already used or expired."))
    token.used_at = now
    return token, user


def verify_email(*, session: Session, raw_token: str, clock: Clock) -> User:
    """Confirm the address a verification link was sent to."""
    _token, user = _consume_email_token(
        session=session, raw=raw_token, purpose=EmailTokenPurpose.VERIFY_EMAIL, clock=clock
    )
    if user.email_verified_at is None:
        user.email_verified_at = clock.now()
    session.flush()
    return user


# -- signing in ----------------------------------------------------------------------------


def _throttle_keys(*, secret: str, email: str, client: str) -> tuple[str, str]:
    return (
        keyed_hash(secret=secret, purpose="login-account", value=email.strip().lower()),
        keyed_hash(secret=secret, purpose="login-client", value=client),
    )


def _check_throttle(*, session: Session, account_key: str, client_key: str, now: datetime) -> None:
    since = now - LOGIN_THROTTLE_WINDOW
    by_account, by_client = (
        session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(column == key, LoginAttempt.attempted_at > since)
        )
        or 0
        for column, key in (
            (LoginAttempt.account_key, account_key),
            (LoginAttempt.client_key, client_key),
        )
    )
    if by_account >= MAX_FAILURES_PER_ACCOUNT or by_client >= MAX_FAILURES_PER_CLIENT:
        minutes = int(LOGIN_THROTTLE_WINDOW.total_seconds() // 60)
        raise TooManyAttempts(
            N_("Too many failed sign-in attempts. Try again in %(minutes)s minutes."),
            retry_after_seconds=int(LOGIN_THROTTLE_WINDOW.total_seconds()),
            minutes=minutes,
        )


def authenticate(
    *, session: Session, email: str, password: str, client: str, secret: str, clock: Clock
) -> User:
    """The user these credentials belong to; failures count towards the sign-in throttle."""
    now = clock.now()
    account_key, client_key = _throttle_keys(secret=secret, email=email, client=client)
    _check_throttle(session=session, account_key=account_key, client_key=client_key, now=now)
    user = get_by_email(session=session, email=email)
    if not verify_password(user.password_hash if user else None, password) or user is None:
        session.add(LoginAttempt(account_key=account_key, client_key=client_key, attempted_at=now))
        session.flush()
        raise NotAuthenticated(N_("The email or password is incorrect."))
    if not user.is_verified:
        raise PermissionDenied(
            N_("Confirm your email address first: open the link we sent you, or ask for a new one.")
        )
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.execute(delete(LoginAttempt).where(LoginAttempt.account_key == account_key))
    session.flush()
    return user


def purge_login_attempts(*, session: Session, clock: Clock) -> int:
    """Forget failed attempts older than the throttle window."""
    result = session.execute(
        delete(LoginAttempt).where(LoginAttempt.attempted_at <= clock.now() - LOGIN_THROTTLE_WINDOW)
    )
    return result.rowcount or 0


def start_session(*, session: Session, user: User, clock: Clock) -> str:
    """Open a browser session; returns the secret for the cookie."""
    raw = new_token()
    now = clock.now()
    session.add(
        WebSession(
            user_id=user.id,
            token_hash=hash_token(raw),
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_MAX_AGE,
        )
    )
    session.flush()
    return raw


def user_for_session(*, session: Session, raw_token: str, clock: Clock) -> User | None:
    """The signed-in user of a session cookie, if the session is still valid."""
    web_session = session.scalar(
        select(WebSession).where(WebSession.token_hash == hash_token(raw_token))
    )
    now = clock.now()
    if web_session is None or web_session.expires_at <= now:
        return None
    if now - web_session.last_seen_at >= SESSION_TOUCH_INTERVAL:
        web_session.last_seen_at = now
    return web_session.user


def end_session(*, session: Session, raw_token: str) -> None:
    """Sign out one browser."""
    session.execute(delete(WebSession).where(WebSession.token_hash == hash_token(raw_token)))


# -- password reset ------------------------------------------------------------------------


def request_password_reset(*, session: Session, email: str, clock: Clock, links: Links) -> None:
    """Mail a reset link if the address has an account; say nothing either way."""
    user = get_by_email(session=session, email=email)
    if user is None:
        return
    raw = _issue_email_token(
        session=session,
        user=user,
        purpose=EmailTokenPurpose.RESET_PASSWORD,
        ttl=RESET_PASSWORD_TTL,
        clock=clock,
    )
    subject, body = render.render(
        "reset_password",
        language=user.language,
        link=links.to(f"/password-reset/{raw}", user.language),
        minutes=int(RESET_PASSWORD_TTL.total_seconds() // 60),
    )
    mail.enqueue(
        session=session, recipient=user.email, subject=subject, body_text=body, clock=clock
    )


def check_reset_token(*, session: Session, raw_token: str, clock: Clock) -> None:
    """Raise NotFound unless the reset link can still be used."""
    token = session.scalar(
        select(EmailToken).where(
            EmailToken.token_hash == hash_token(raw_token),
            EmailToken.purpose == EmailTokenPurpose.RESET_PASSWORD,
        )
    )
    if token is None or token.used_at is not None or token.expires_at <= clock.now():
        raise NotFound(N_("This link is invalid, already used or expired."))


def reset_password(
    *, session: Session, raw_token: str, password: str, password_confirm: str, clock: Clock
) -> User:
    """Set a new password from a reset link and sign out every session of the account."""
    if password != password_confirm:
        raise ValidationFailed({"password_confirm": N_("The two passwords differ.")})
    _token, user = _consume_email_token(
        session=session, raw=raw_token, purpose=EmailTokenPurpose.RESET_PASSWORD, clock=clock
    )
    now = clock.now()
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    # The link reached the mailbox, so the address is proven too.
    if user.email_verified_at is None:
        user.email_verified_at = now
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.flush()
    return user


# -- personal API tokens -------------------------------------------------------------------


def create_api_token(
    *, session: Session, user: User, name: str, clock: Clock
) -> tuple[ApiToken, str]:
    """Create a personal API token; the secret is returned once and stored only as a hash."""
    active = session.scalar(
        select(func.count())
        .select_from(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    )
    if (active or 0) >= API_TOKENS_PER_USER:
        raise ValidationFailed(
            {"name": N_("You have too many active tokens. Revoke one you no longer use.")}
        )
    raw = new_token(API_TOKEN_PREFIX)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=hash_token(raw),
        prefix=raw[:API_TOKEN_DISPLAY_CHARS],
        created_at=clock.now(),
    )
    session.add(token)
    session.flush()
    return token, raw


def list_api_tokens(*, session: Session, user: User) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at)
        )
    )


def revoke_api_token(
    *, session: Session, user: User, token_id: uuid.UUID, clock: Clock
) -> ApiToken:
    """Revoke one of the user's tokens."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(N_("No such token."))
    if token.revoked_at is None:
        token.revoked_at = clock.now()
    session.flush()
    return token


def user_for_api_token(*, session: Session, raw_token: str, clock: Clock) -> User | None:
    """The owner of an active API token."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(raw_token)))
    if token is None or token.revoked_at is not None:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.is_verified:
        return None
    session.execute(
        update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=clock.now())
    )
    return user
