"""Queueing mail in the request's transaction and delivering it over SMTP afterwards."""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from smartprotect.accounts.models import EMAIL_ADDRESS, address_form
from smartprotect.clock import Clock
from smartprotect.config import MailBackend, Settings
from smartprotect.db import unit_of_work
from smartprotect.mail.models import OutboxMessage, OutboxStatus
from smartprotect.privacy.keys.sealed import index_in

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# How long a claimed message is left to its sender before another may try it.
SEND_LEASE = timedelta(minutes=5)
FIRST_RETRY_DELAY = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(hours=1)
BATCH_SIZE = 50
ERROR_MAX = 500
# Set on a session whose transaction queued mail, so the edge can wake the sender.
QUEUED_FLAG = "smartprotect.mail_queued"


class Kind:
    TRANSACTIONAL = "transactional"


MARKETING = "marketing"


def _still_wanted(session: Session, settings: Settings, message: OutboxMessage) -> bool:
    # Here, not at the top: marketing asks the consent ledger, which itself sends mail.
    from smartprotect.mail import marketing

    secret = settings.secret_key.get_secret_value()
    return marketing.still_wanted(session=session, secret=secret, message=message)


def enqueue(
    *,
    session: Session,
    recipient: str,
    subject: str,
    body_text: str,
    clock: Clock,
    kind: str = Kind.TRANSACTIONAL,
    body_html: str | None = None,
    headers: dict[str, str] | None = None,
    user_id: uuid.UUID,
) -> OutboxMessage:
    """Queue a message for the account `user_id` (to its address, or one it is changing to),
    sealed with its owner's key; it is sent only if the surrounding transaction commits."""
    now = clock.now()
    message = OutboxMessage(
        user_id=user_id,
        recipient=recipient,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        headers=headers or {},
        kind=kind,
        status=OutboxStatus.PENDING,
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(message)
    session.flush()
    session.info[QUEUED_FLAG] = True
    return message


def enqueue_for(
    *,
    session: Session,
    user,
    subject: str,
    body_text: str,
    clock: Clock,
    kind: str = Kind.TRANSACTIONAL,
) -> OutboxMessage:
    """Queue a message to an account's address, filed under the account (so it goes with
    the account, and a legal hold on it keeps it)."""
    return enqueue(session=session, recipient=user.email, subject=subject, body_text=body_text,
                   clock=clock, kind=kind, user_id=user.id)  # fmt: skip


def recently_sent(*, session: Session, recipient: str, kind: str, since) -> bool:
    """Whether a message of this kind was queued for this recipient since then."""
    count = session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.recipient_index
            == index_in(session, purpose=EMAIL_ADDRESS, value=address_form(recipient)),
            OutboxMessage.kind == kind,
            OutboxMessage.created_at > since,
        )
    )
    return bool(count)


def build_email(message: OutboxMessage, *, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.recipient
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip("> "))
    for name, value in (message.headers or {}).items():
        email[name] = value
    email.set_content(message.body_text)
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    return email


def _send_smtp(email: EmailMessage, settings: Settings) -> None:
    context = ssl.create_default_context(cafile=settings.smtp_ca_file)
    smtp_class = smtplib.SMTP_SSL if settings.smtp_ssl else smtplib.SMTP
    kwargs = {"context": context} if settings.smtp_ssl else {}
    with smtp_class(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds, **kwargs
    ) as smtp:
        if settings.smtp_starttls and not settings.smtp_ssl:
            smtp.starttls(context=context)
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_username, password)
        smtp.send_message(email)


def _send_console(email: EmailMessage) -> None:
    # Development only: the console stands in for a mail server, readable rather than encoded.
    headers = "".join(f"{name}: {value}\n" for name, value in email.items())
    body = email.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    print(f"{'-' * 72}\n{headers}\n{text}{'-' * 72}", flush=True)


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after the given number of failed attempts, capped."""
    delay = FIRST_RETRY_DELAY
    for _ in range(max(attempts - 1, 0)):
        delay *= 2
        if delay >= MAX_RETRY_DELAY:
            return MAX_RETRY_DELAY
    return delay


def deliver_pending(
    *, session_factory: sessionmaker[Session], settings: Settings, clock: Clock
) -> int:
    """Send every message that is due; returns how many were sent. Safe to run concurrently."""
    sent = 0
    with unit_of_work(session_factory) as session:
        due_ids = list(
            session.scalars(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.next_attempt_at <= clock.now(),
                )
                .order_by(OutboxMessage.created_at)
                .limit(BATCH_SIZE)
            )
        )
    for message_id in due_ids:
        sent += _deliver_one(
            session_factory=session_factory, settings=settings, clock=clock, message_id=message_id
        )
    return sent


def _deliver_one(
    *,
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    message_id: uuid.UUID,
) -> int:
    # Claim the message in a short transaction: pushing next_attempt_at forward is a lease
    # that keeps other senders off it, without holding a lock while we talk SMTP.
    with unit_of_work(session_factory) as session:
        message = session.scalar(
            select(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at <= clock.now(),
            )
            .with_for_update(skip_locked=True)
        )
        if message is None:
            return 0
        if message.recipient_sealed is None:
            message.status = OutboxStatus.FAILED
            message.last_error = "queued before mail was sealed: no key to open it with"
            return 0
        if message.kind == MARKETING and not _still_wanted(session, settings, message):
            message.status = OutboxStatus.CANCELLED
            message.body_text = message.body_html = None
            return 0
        message.attempts += 1
        message.next_attempt_at = clock.now() + SEND_LEASE
        attempts = message.attempts
        email = build_email(message, sender=settings.mail_from)
    error: str | None = None
    try:
        if settings.mail_backend is MailBackend.CONSOLE:
            _send_console(email)
        else:
            _send_smtp(email, settings)
    except (OSError, smtplib.SMTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
    with unit_of_work(session_factory) as session:
        message = session.get(OutboxMessage, message_id)
        if message is None:
            return 0
        if error is None:
            message.status = OutboxStatus.SENT
            message.sent_at = clock.now()
            message.last_error = None
            # Bodies carry one-time links; once delivered, the outbox keeps no copy of them.
            message.body_text = message.body_html = None
            return 1
        message.last_error = error
        if attempts >= MAX_ATTEMPTS:
            message.status = OutboxStatus.FAILED
        else:
            message.next_attempt_at = clock.now() + retry_delay(attempts)
        log.warning("mail %s not delivered (attempt %d)", message_id, attempts)
        return 0
