"""Registering, verifying, signing in and out, password resets and API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartprotect.accounts.models import (
    EMAIL_ADDRESS,
    LOGIN_THROTTLE_WINDOW,
    ApiToken,
    EmailToken,
    EmailTokenPurpose,
    LoginAttempt,
    User,
    WebSession,
    address_form,
)
from smartprotect.accounts.schemas import RegistrationConsents, UserCreate, normalise_email
from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.clock import Clock
from smartprotect.errors import (
    Conflict,
    NotAuthenticated,
    NotFound,
    PasswordIncorrect,
    PermissionDenied,
    TooManyAttempts,
    ValidationFailed,
)
from smartprotect.i18n import N_
from smartprotect.mail import render
from smartprotect.mail import service as mail
from smartprotect.mail.links import Links
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import Channel, ConsentAction, Purpose
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.keys.master import Keyring
from smartprotect.privacy.keys.sealed import index_in
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
# At most one mail of a kind (verification, reset, "you already have an account") per
# address in this time, whoever asks.
EMAIL_COOLDOWN = timedelta(minutes=2)
RESET_PASSWORD_TTL = timedelta(minutes=60)
SESSION_MAX_AGE = timedelta(days=14)
# Touching last_seen_at on every request would make every page view a write.
SESSION_TOUCH_INTERVAL = timedelta(minutes=5)

MAX_FAILURES_PER_ACCOUNT_AND_CLIENT = 5
MAX_FAILURES_PER_ACCOUNT = 50
MAX_FAILURES_PER_CLIENT = 20

ACCOUNT_EXISTS_MAIL = "account_exists"
API_TOKEN_PREFIX = "spat_"  # noqa: S105 - marks our tokens for secret scanners
API_TOKEN_DISPLAY_CHARS = 12
API_TOKENS_PER_USER = 20


# -- registration and e-mail verification --------------------------------------------------


def address_index(*, session: Session, email: str) -> str:
    """The blind index an address is found by (addresses are stored only sealed)."""
    return index_in(session, purpose=EMAIL_ADDRESS, value=address_form(email))


def get_by_email(*, session: Session, email: str) -> User | None:
    return session.scalar(
        select(User).where(User.email_index == address_index(session=session, email=email))
    )


def create_user(*, session: Session, keyring: Keyring, clock: Clock, **values) -> User:
    """Add an account with its own data key, made first: the account's personal fields are
    sealed with it as the row is written."""
    user = User(id=values.pop("id", None) or uuid.uuid4(), **values)
    keys.create_key(session=session, master=keyring.master, subject_id=user.id, clock=clock)
    session.add(user)
    session.flush()
    return user


POLICY_CHANGED = N_(
    "The privacy policy changed while you were reading it. Please read the revision in force "
    "and accept it."
)


def registration_consent_errors(
    *, session: Session, language: str, consents: RegistrationConsents
) -> dict[str, str]:
    """What is missing from the registration's acceptance and consents, by field."""
    document = policy.document_in_force(session=session, language=language)
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
    keyring: Keyring,
    user_agent: str | None = None,
    client_ip: str | None = None,
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

    # Hashed before the lookup, so a registered address answers no faster than a new one.
    password_hash = hash_password(data.password)
    existing = get_by_email(session=session, email=data.email)
    if existing is not None:
        if mail.recently_sent(
            session=session,
            recipient=existing.email,
            kind=ACCOUNT_EXISTS_MAIL,
            since=clock.now() - EMAIL_COOLDOWN,
        ):
            return None
        subject, body = render.render(
            "account_exists",
            language=existing.language,
            login_link=links.to("/login", existing.language),
            reset_link=links.to("/password-reset", existing.language),
        )
        mail.enqueue_for(
            session=session,
            user=existing,
            subject=subject,
            body_text=body,
            clock=clock,
            kind=ACCOUNT_EXISTS_MAIL,
        )
        return None

    now = clock.now()
    try:
        with session.begin_nested():
            user = create_user(
                session=session, keyring=keyring, clock=clock,
                email=data.email, phone=data.phone, password_hash=password_hash,
                last_name=data.last_name, first_name=data.first_name, patronymic=data.patronymic,
                language=data.language, created_at=now, password_changed_at=now,
                email_provided_at=now, phone_provided_at=now,
                names_provided_at=now if any((data.last_name, data.first_name, data.patronymic))
                else None,
            )  # fmt: skip
    except IntegrityError:
        # A simultaneous registration of the same address won the race; the owner gets
        # the same mail as any second registration.
        return register(
            session=session, data=data, consents=consents, channel=channel, clock=clock,
            links=links, keyring=keyring, user_agent=user_agent, client_ip=client_ip,
        )  # fmt: skip
    actor = audit.user_actor(secret=keyring.secret, user_id=user.id)
    audit.record_event(
        session=session,
        clock=clock,
        action=Tag.ACCOUNT_REGISTERED,
        actor=actor,
        secret=keyring.secret,
        subject_id=user.id,
        details={"channel": channel.value, "language": user.language},
    )
    policy.record_acceptance(
        session=session,
        keyring=keyring,
        subject_id=user.id,
        document=given,
        channel=channel,
        actor=actor,
        clock=clock,
    )
    granted = {
        **dict.fromkeys(consent.REQUIRED_AT_REGISTRATION, True),
        Purpose.MARKETING_EMAIL: consents.marketing_email,
        Purpose.MARKETING_SMS: consents.marketing_sms,
    }
    # A box left unticked is a choice too, and recorded as one.
    for purpose, is_granted in granted.items():
        consent.record(
            session=session,
            keyring=keyring,
            subject_id=user.id,
            purpose=purpose,
            action=ConsentAction.GRANT if is_granted else ConsentAction.WITHDRAW,
            policy_document_id=given.id,
            channel=channel,
            actor=actor,
            clock=clock,
            user_agent=user_agent,
            client_ip=client_ip,
        )
    _send_verification(session=session, user=user, clock=clock, links=links)
    return user


def issue_email_token(
    *,
    session: Session,
    user: User,
    purpose: EmailTokenPurpose,
    ttl: timedelta,
    clock: Clock,
    email: str | None = None,
) -> str | None:
    """A new one-time link, or None if one was mailed moments ago.

    Earlier links stay valid until used or expired: were each request to cancel the last,
    a stranger could keep the owner's link from ever working. The cool-down keeps the
    same stranger from flooding the mailbox.
    """
    now = clock.now()
    recent = session.scalar(
        select(func.count())
        .select_from(EmailToken)
        .where(
            EmailToken.user_id == user.id,
            EmailToken.purpose == purpose,
            EmailToken.created_at > now - EMAIL_COOLDOWN,
        )
    )
    if recent:
        return None
    raw = new_token()
    session.add(
        EmailToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_token(raw),
            email_index=address_index(session=session, email=email or user.email),
            created_at=now,
            expires_at=now + ttl,
        )
    )
    session.flush()
    return raw


def _send_verification(*, session: Session, user: User, clock: Clock, links: Links) -> None:
    raw = issue_email_token(
        session=session,
        user=user,
        purpose=EmailTokenPurpose.VERIFY_EMAIL,
        ttl=VERIFY_EMAIL_TTL,
        clock=clock,
    )
    if raw is None:
        return
    subject, body = render.render(
        "verify_email",
        language=user.language,
        link=links.to(f"/verify-email/{raw}", user.language),
        hours=int(VERIFY_EMAIL_TTL.total_seconds() // 3600),
    )
    mail.enqueue_for(session=session, user=user, subject=subject, body_text=body, clock=clock)


def resend_verification(*, session: Session, email: str, clock: Clock, links: Links) -> None:
    """Mail a fresh verification link to an unverified account, silently doing nothing else."""
    user = get_by_email(session=session, email=email)
    if user is not None and not user.is_verified:
        _send_verification(session=session, user=user, clock=clock, links=links)


def consume_email_token(
    *, session: Session, raw: str, purpose: EmailTokenPurpose, clock: Clock
) -> tuple[EmailToken, User]:
    """The token's user, once: the link must be for the address it was sent to (the
    account's, or for a change, the one waiting to replace it)."""
    token = session.scalar(
        select(EmailToken)
        .where(EmailToken.token_hash == hash_token(raw), EmailToken.purpose == purpose)
        .with_for_update()
    )
    now = clock.now()
    if token is None or token.used_at is not None or token.expires_at <= now:
        raise NotFound(N_("This link is invalid, already used or expired."))
    user = session.get(User, token.user_id)
    if user is None:
        raise NotFound(N_("This link is invalid, already used or expired."))
    address = user.pending_email if purpose is EmailTokenPurpose.CHANGE_EMAIL else user.email
    if address is None or address_index(session=session, email=address) != token.email_index:
        raise NotFound(N_("This link is invalid, already used or expired."))
    token.used_at = now
    # One link used settles the matter: the others of the same kind stop working.
    session.execute(
        update(EmailToken)
        .where(
            EmailToken.user_id == user.id,
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return token, user


def verify_email(*, session: Session, raw_token: str, clock: Clock, keyring: Keyring) -> User:
    """Confirm the address a verification link was sent to."""
    _token, user = consume_email_token(
        session=session, raw=raw_token, purpose=EmailTokenPurpose.VERIFY_EMAIL, clock=clock
    )
    if user.email_verified_at is None:
        user.email_verified_at = clock.now()
    _audit_user(
        session=session, keyring=keyring, clock=clock, user=user, action=Tag.ACCOUNT_EMAIL_VERIFIED
    )
    session.flush()
    return user


# The sign-in throttle's client key for passwords re-entered by a signed-in user.
REENTRY_CLIENT = "password-re-entry"


def confirm_password(
    *, session: Session, keyring: Keyring, user: User, password: str, clock: Clock
) -> None:
    """Check a password a signed-in user re-enters before a grave step (a new address,
    erasing the account, wiping a device), throttled like signing in: a stolen session must
    not become unlimited guesses at the password."""
    now = clock.now()
    account_key = throttle_account_key(secret=keyring.secret, email=user.email)
    client_key = keyed_hash(secret=keyring.secret, purpose="login-client", value=REENTRY_CLIENT)
    try:
        _check_throttle(session=session, account_key=account_key, client_key=client_key, now=now)
    except TooManyAttempts:
        raise PasswordIncorrect(
            {"password": N_("Too many wrong passwords: try again in 15 minutes.")}
        ) from None
    if not verify_password(user.password_hash, password):
        session.add(LoginAttempt(account_key=account_key, client_key=client_key, attempted_at=now))
        session.flush()
        raise PasswordIncorrect({"password": N_("The password is incorrect.")})


def request_email_change(
    *,
    session: Session,
    keyring: Keyring,
    user: User,
    new_email: str,
    password: str,
    clock: Clock,
    links: Links,
) -> None:
    """Start changing the account's address: confirmed by the password, then by a link
    mailed to the new address. The old address is told, and stays in use until then."""
    confirm_password(session=session, keyring=keyring, user=user, password=password, clock=clock)
    try:
        address = normalise_email(new_email)
    except ValueError as exc:
        raise ValidationFailed({"email": getattr(exc, "message_template", str(exc))}) from None
    if address == user.email:
        raise ValidationFailed({"email": N_("This is already your address.")})
    user.pending_email = address
    session.flush()
    raw = issue_email_token(
        session=session, user=user, purpose=EmailTokenPurpose.CHANGE_EMAIL,
        ttl=VERIFY_EMAIL_TTL, clock=clock, email=address,
    )  # fmt: skip
    _audit_user(session=session, keyring=keyring, clock=clock, user=user,
                action=Tag.ACCOUNT_EMAIL_CHANGE_REQUESTED)  # fmt: skip
    if raw is None:
        return  # a link was mailed moments ago; the cool-down keeps mailboxes from floods
    # Another account's address gets no link (and learns nothing); the change just never
    # completes, as if the link were lost.
    if get_by_email(session=session, email=address) is None:
        subject, body = render.render(
            "confirm_email_change", language=user.language,
            link=links.to(f"/confirm-email/{raw}", user.language),
            hours=int(VERIFY_EMAIL_TTL.total_seconds() // 3600),
        )  # fmt: skip
        mail.enqueue(session=session, recipient=address, subject=subject, body_text=body,
                     clock=clock, user_id=user.id)  # fmt: skip
    subject, body = render.render("email_change_requested", language=user.language)
    mail.enqueue_for(session=session, user=user, subject=subject, body_text=body, clock=clock)


def confirm_email_change(
    *, session: Session, raw_token: str, clock: Clock, keyring: Keyring
) -> User:
    """Make the confirmed new address the account's; its retention clock starts now."""
    _token, user = consume_email_token(
        session=session, raw=raw_token, purpose=EmailTokenPurpose.CHANGE_EMAIL, clock=clock
    )
    if get_by_email(session=session, email=user.pending_email) is not None:
        raise Conflict(N_("This address now belongs to another account."))
    now = clock.now()
    user.email, user.pending_email = user.pending_email, None
    user.email_verified_at = user.email_provided_at = now
    _audit_user(session=session, keyring=keyring, clock=clock, user=user,
                action=Tag.ACCOUNT_EMAIL_CHANGED)  # fmt: skip
    session.flush()
    return user


def _audit_user(
    *,
    session: Session,
    keyring: Keyring,
    clock: Clock,
    user: User,
    action: Tag,
    details: dict | None = None,
    personal: dict | None = None,
) -> None:
    """An audit event about a user, acted by that user."""
    audit.record_event(
        session=session,
        clock=clock,
        action=action,
        actor=audit.user_actor(secret=keyring.secret, user_id=user.id),
        secret=keyring.secret,
        subject_id=user.id,
        details=details,
        personal=personal,
        master=keyring.master,
    )


# -- signing in ----------------------------------------------------------------------------


def throttle_account_key(*, secret: str, email: str) -> str:
    """How failed sign-ins name an account: a keyed hash of its address, never the address."""
    return keyed_hash(secret=secret, purpose="login-account", value=email.strip().lower())


def _throttle_keys(*, secret: str, email: str, client: str) -> tuple[str, str]:
    return (
        throttle_account_key(secret=secret, email=email),
        keyed_hash(secret=secret, purpose="login-client", value=client),
    )


def _check_throttle(*, session: Session, account_key: str, client_key: str, now: datetime) -> None:
    since = now - LOGIN_THROTTLE_WINDOW
    if session.get_bind().dialect.name == "postgresql":
        # Serialise attempts on one account, so a burst of parallel guesses cannot all pass
        # the count before any is recorded (SQLite's write lock already serialises them).
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": account_key}
        )

    def failures(*conditions) -> int:
        query = select(func.count()).select_from(LoginAttempt)
        return session.scalar(query.where(LoginAttempt.attempted_at > since, *conditions)) or 0

    by_pair = failures(
        LoginAttempt.account_key == account_key, LoginAttempt.client_key == client_key
    )
    if (
        # The usual case: someone guessing one account from one place. Others still get in.
        by_pair >= MAX_FAILURES_PER_ACCOUNT_AND_CLIENT
        # Guessing one account from many places, or many accounts from one place.
        or failures(LoginAttempt.account_key == account_key) >= MAX_FAILURES_PER_ACCOUNT
        or failures(LoginAttempt.client_key == client_key) >= MAX_FAILURES_PER_CLIENT
    ):
        minutes = int(LOGIN_THROTTLE_WINDOW.total_seconds() // 60)
        raise TooManyAttempts(
            N_("Too many failed sign-in attempts. Try again in %(minutes)s minutes."),
            retry_after_seconds=int(LOGIN_THROTTLE_WINDOW.total_seconds()),
            minutes=minutes,
        )


def authenticate(
    *, session: Session, email: str, password: str, client: str, keyring: Keyring, clock: Clock
) -> User:
    """The user these credentials belong to; failures count towards the sign-in throttle."""
    now = clock.now()
    account_key, client_key = _throttle_keys(secret=keyring.secret, email=email, client=client)
    user = get_by_email(session=session, email=email)
    try:
        _check_throttle(session=session, account_key=account_key, client_key=client_key, now=now)
    except TooManyAttempts:
        _audit_login_failure(
            session=session, keyring=keyring, clock=clock, user=user, client=client,
            action=Tag.ACCOUNT_LOGIN_THROTTLED, account_key=account_key,
        )  # fmt: skip
        raise
    if not verify_password(user.password_hash if user else None, password) or user is None:
        session.add(LoginAttempt(account_key=account_key, client_key=client_key, attempted_at=now))
        _audit_login_failure(
            session=session, keyring=keyring, clock=clock, user=user, client=client,
            action=Tag.ACCOUNT_LOGIN_FAILED, account_key=account_key,
        )  # fmt: skip
        session.flush()
        raise NotAuthenticated(N_("The email or password is incorrect."))
    if not user.is_verified:
        raise PermissionDenied(
            N_("Confirm your email address first: open the link we sent you, or ask for a new one.")
        )
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    # Signing in, the user gives us their address again: its retention clock restarts.
    user.email_provided_at = now
    session.execute(
        delete(LoginAttempt).where(
            LoginAttempt.account_key == account_key, LoginAttempt.client_key == client_key
        )
    )
    _audit_user(
        session=session, keyring=keyring, clock=clock, user=user, action=Tag.ACCOUNT_LOGIN,
        personal={"ip": client},
    )  # fmt: skip
    session.flush()
    return user


def _audit_login_failure(
    *,
    session: Session,
    keyring: Keyring,
    clock: Clock,
    user: User | None,
    client: str,
    action: Tag,
    account_key: str,
) -> None:
    if user is not None:
        _audit_user(
            session=session, keyring=keyring, clock=clock, user=user, action=action,
            personal={"ip": client},
        )  # fmt: skip
        return
    # No account: nobody to seal the address for, so only keyed hashes are kept.
    audit.record_event(
        session=session,
        clock=clock,
        action=action,
        actor="anonymous",
        secret=keyring.secret,
        details={
            "account_key": account_key,
            "client_key": keyed_hash(secret=keyring.secret, purpose="audit-ip", value=client),
        },
    )


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


def end_session(*, session: Session, raw_token: str, keyring: Keyring, clock: Clock) -> None:
    """Sign out one browser."""
    web_session = session.scalar(
        select(WebSession).where(WebSession.token_hash == hash_token(raw_token))
    )
    if web_session is None:
        return
    _audit_user(
        session=session, keyring=keyring, clock=clock, user=web_session.user,
        action=Tag.ACCOUNT_LOGOUT,
    )  # fmt: skip
    session.delete(web_session)
    session.flush()


# -- password reset ------------------------------------------------------------------------


def request_password_reset(
    *, session: Session, email: str, clock: Clock, links: Links, keyring: Keyring
) -> None:
    """Mail a reset link if the address has an account; say nothing either way."""
    user = get_by_email(session=session, email=email)
    if user is None:
        return
    raw = issue_email_token(
        session=session,
        user=user,
        purpose=EmailTokenPurpose.RESET_PASSWORD,
        ttl=RESET_PASSWORD_TTL,
        clock=clock,
    )
    if raw is None:
        return
    _audit_user(
        session=session, keyring=keyring, clock=clock, user=user,
        action=Tag.ACCOUNT_PASSWORD_RESET_REQUESTED,
    )  # fmt: skip
    subject, body = render.render(
        "reset_password",
        language=user.language,
        link=links.to(f"/password-reset/{raw}", user.language),
        minutes=int(RESET_PASSWORD_TTL.total_seconds() // 60),
    )
    mail.enqueue_for(session=session, user=user, subject=subject, body_text=body, clock=clock)


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
    *,
    session: Session,
    raw_token: str,
    password: str,
    password_confirm: str,
    clock: Clock,
    keyring: Keyring,
) -> User:
    """Set a new password from a reset link and sign out every session of the account."""
    if password != password_confirm:
        raise ValidationFailed({"password_confirm": N_("The two passwords differ.")})
    _token, user = consume_email_token(
        session=session, raw=raw_token, purpose=EmailTokenPurpose.RESET_PASSWORD, clock=clock
    )
    now = clock.now()
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    # The link reached the mailbox, so the address is proven too.
    if user.email_verified_at is None:
        user.email_verified_at = now
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    # Whoever knew the old password may have made tokens with it.
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    _audit_user(
        session=session, keyring=keyring, clock=clock, user=user,
        action=Tag.ACCOUNT_PASSWORD_RESET,
        details={"sessions_ended": True, "api_tokens_revoked": True},
    )  # fmt: skip
    session.flush()
    return user


# -- personal API tokens -------------------------------------------------------------------


def create_api_token(
    *, session: Session, user: User, name: str, clock: Clock, keyring: Keyring
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
    _audit_user(
        session=session, keyring=keyring, clock=clock, user=user,
        action=Tag.ACCOUNT_API_TOKEN_CREATED, details={"token": str(token.id)},
    )  # fmt: skip
    return token, raw


def list_api_tokens(*, session: Session, user: User) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at)
        )
    )


def revoke_api_token(
    *, session: Session, user: User, token_id: uuid.UUID, clock: Clock, keyring: Keyring
) -> ApiToken:
    """Revoke one of the user's tokens."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(N_("No such token."))
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        _audit_user(
            session=session, keyring=keyring, clock=clock, user=user,
            action=Tag.ACCOUNT_API_TOKEN_REVOKED, details={"token": str(token.id)},
        )  # fmt: skip
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


def user_actor(*, keyring: Keyring, user: User) -> str:
    """How the audit log and the ledger name a user acting on their own behalf."""
    return audit.user_actor(secret=keyring.secret, user_id=user.id)
