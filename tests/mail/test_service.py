"""The outbox: queued in the transaction, delivered over real SMTP, retried, then forgotten."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import select

from smartprotect.db import KEYRING
from smartprotect.mail import service as mail
from smartprotect.mail.models import OutboxMessage, OutboxStatus
from smartprotect.mail.worker import OutboxWorker
from tests.conftest import body_of
from tests.helpers import add_owner, queue_mail


def test_queued_mail_is_delivered_over_smtp(session_factory, clock, deliver, mailbox, db):
    queue_mail(session_factory, clock)
    assert deliver() == 1
    message = mailbox.last_to("owner@example.kz")
    assert message["Subject"] == "Тема"
    assert "Привет" in body_of(message)
    stored = db.scalar(select(OutboxMessage))
    assert stored.status is OutboxStatus.SENT and stored.sent_at == clock.now()
    # The delivered body (with its one-time links) is not kept.
    assert stored.body_text is None and stored.body_text_sealed is None
    assert deliver() == 0


def test_mail_of_a_rolled_back_transaction_is_never_sent(session_factory, clock, deliver, mailbox):
    session = session_factory()
    owner = add_owner(session, clock=clock, keyring=session.info[KEYRING], email="a@example.kz")
    mail.enqueue(session=session, recipient="a@example.kz", subject="s", body_text="b",
                 clock=clock, user_id=owner.id)  # fmt: skip
    session.rollback()
    session.close()
    assert deliver() == 0 and mailbox.messages == []


def test_unreachable_server_is_retried_with_backoff(session_factory, clock, settings, mailbox, db):
    queue_mail(session_factory, clock)
    down = settings.model_copy(update={"smtp_port": 1})
    assert mail.deliver_pending(session_factory=session_factory, settings=down, clock=clock) == 0
    stored = db.scalar(select(OutboxMessage))
    assert stored.status is OutboxStatus.PENDING and stored.attempts == 1
    assert stored.next_attempt_at == clock.now() + mail.FIRST_RETRY_DELAY
    assert "ConnectionRefusedError" in stored.last_error

    # Not due yet: nothing is attempted.
    assert (
        mail.deliver_pending(session_factory=session_factory, settings=settings, clock=clock) == 0
    )
    clock.advance(mail.FIRST_RETRY_DELAY)
    assert (
        mail.deliver_pending(session_factory=session_factory, settings=settings, clock=clock) == 1
    )
    assert mailbox.last_to("owner@example.kz")


def test_gives_up_after_max_attempts(session_factory, clock, settings, db):
    queue_mail(session_factory, clock)
    down = settings.model_copy(update={"smtp_port": 1})
    for _ in range(mail.MAX_ATTEMPTS):
        mail.deliver_pending(session_factory=session_factory, settings=down, clock=clock)
        clock.advance(mail.MAX_RETRY_DELAY)
    stored = db.scalar(select(OutboxMessage))
    assert stored.status is OutboxStatus.FAILED and stored.attempts == mail.MAX_ATTEMPTS


def test_retry_delay_is_capped():
    assert mail.retry_delay(1) == mail.FIRST_RETRY_DELAY
    assert mail.retry_delay(2) == mail.FIRST_RETRY_DELAY * 2
    assert mail.retry_delay(50) == mail.MAX_RETRY_DELAY


def test_console_backend_prints_instead_of_sending(
    session_factory, clock, settings, capsys, mailbox
):
    queue_mail(session_factory, clock, body="Ссылка: https://testserver/verify-email/abc")
    console = settings.model_copy(update={"mail_backend": mail.MailBackend.CONSOLE})
    assert mail.deliver_pending(session_factory=session_factory, settings=console, clock=clock) == 1
    printed = capsys.readouterr().out
    # Readable, not transfer-encoded: a developer follows the link from the console.
    assert "To: owner@example.kz" in printed and "Subject: Тема" in printed
    assert "Ссылка: https://testserver/verify-email/abc" in printed
    assert mailbox.messages == []


def test_worker_delivers_when_woken(session_factory, clock, settings, mailbox):
    slow_poll = settings.model_copy(update={"mail_poll_seconds": 3600})
    worker = OutboxWorker(settings=slow_poll, session_factory=session_factory, clock=clock)

    async def scenario():
        await worker.start()
        try:
            queue_mail(session_factory, clock)
            worker.wake()
            deadline = time.monotonic() + 10
            while not mailbox.to("owner@example.kz") and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        finally:
            await worker.stop()

    asyncio.run(scenario())
    assert mailbox.to("owner@example.kz")


def test_a_request_that_queues_mail_wakes_the_worker(app, published_policy, mailbox):
    from fastapi.testclient import TestClient

    from tests.helpers import register_via_web

    app.state.settings.mail_poll_seconds = 3600
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        register_via_web(client, published_policy["en"])
        deadline = time.monotonic() + 10
        while not mailbox.messages and time.monotonic() < deadline:
            time.sleep(0.02)
    assert mailbox.last_to("aigerim@example.kz")


def test_message_headers(session_factory, clock, settings):
    message = OutboxMessage(
        recipient="r@example.kz",
        subject="s",
        body_text="b",
        headers={"X-Test": "1"},
        kind="transactional",
        status=OutboxStatus.PENDING,
        attempts=0,
        created_at=clock.now(),
        next_attempt_at=clock.now() + timedelta(0),
    )
    email = mail.build_email(message, sender=settings.mail_from)
    assert email["X-Test"] == "1" and email["Message-ID"].endswith("@smprotect.com>")
