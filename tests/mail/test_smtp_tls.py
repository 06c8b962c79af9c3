"""Delivery through a mail server that demands STARTTLS and a login, as production ones do."""

from __future__ import annotations

import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr
from sqlalchemy import select

from smartprotect.mail import service as mail
from smartprotect.mail.models import OutboxMessage, OutboxStatus
from tests.conftest import Mailbox, free_port
from tests.helpers import queue_mail

USER, PASSWORD = "mailer", "mail-password"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=ok)

    box = Mailbox()
    port = free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        authenticator=authenticator, auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    yield box, port, logins
    controller.stop()


def test_starttls_and_login(session_factory, clock, settings, certificate, tls_server, db):
    box, port, logins = tls_server
    queue_mail(session_factory, clock, "r@example.kz", "s", "b")
    secure = settings.model_copy(
        update={
            "smtp_port": port, "smtp_starttls": True, "smtp_username": USER,
            "smtp_password": SecretStr(PASSWORD), "smtp_ca_file": str(certificate[0]),
        }
    )  # fmt: skip
    assert mail.deliver_pending(session_factory=session_factory, settings=secure, clock=clock) == 1
    assert box.last_to("r@example.kz")
    assert logins == [(USER.encode(), PASSWORD.encode())]


def test_wrong_credentials_leave_the_mail_queued(
    session_factory, clock, settings, certificate, tls_server, db
):
    _box, port, _logins = tls_server
    queue_mail(session_factory, clock, "r@example.kz", "s", "b")
    wrong = settings.model_copy(
        update={"smtp_port": port, "smtp_starttls": True, "smtp_username": USER,
                "smtp_password": SecretStr("nope"), "smtp_ca_file": str(certificate[0]),
                "smtp_timeout_seconds": 2}
    )  # fmt: skip
    assert mail.deliver_pending(session_factory=session_factory, settings=wrong, clock=clock) == 0
    stored = db.scalar(select(OutboxMessage))
    # The server refuses the login (aiosmtpd then stalls the session); the mail waits.
    assert stored.status is OutboxStatus.PENDING and stored.attempts == 1 and stored.last_error


def test_an_untrusted_certificate_is_refused(session_factory, clock, settings, tls_server, db):
    _box, port, _logins = tls_server
    queue_mail(session_factory, clock, "r@example.kz", "s", "b")
    unverified = settings.model_copy(update={"smtp_port": port, "smtp_starttls": True})
    assert (
        mail.deliver_pending(session_factory=session_factory, settings=unverified, clock=clock) == 0
    )
    assert "CERTIFICATE_VERIFY_FAILED" in db.scalar(select(OutboxMessage.last_error))
