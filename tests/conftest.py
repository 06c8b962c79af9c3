"""Shared fixtures: a migrated database (SQLite or PostgreSQL), a real SMTP server, the app."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from smartprotect import migrations
from smartprotect.app import create_app
from smartprotect.audit.models import GENESIS_HASH, AuditChainHead
from smartprotect.clock import FrozenClock
from smartprotect.config import Environment, MailBackend, Settings
from smartprotect.db import Base, make_engine, make_session_factory, normalise_url, unit_of_work
from smartprotect.devices.models import AccessGeneration
from smartprotect.mail.service import deliver_pending
from smartprotect.privacy.keys.master import Keyring, LocalMasterKey, encode_key
from smartprotect.privacy.policy import service as policy_service
from tests.helpers import LocalReceiver

ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = ROOT / "policy"
TEST_SECRET = "test-secret-" + "k" * 40
TEST_MASTER_KEY = bytes(range(32))
ARTIFACTS = ROOT / "test-artifacts"

# -- the database --------------------------------------------------------------------------


def _postgres_url() -> str | None:
    url = os.environ.get("SMARTPROTECT_DATABASE_URL", "")
    return normalise_url(url) if url.startswith("postgres") else None


@pytest.fixture(scope="session")
def _template_database(tmp_path_factory) -> Iterator[str]:
    """A migrated database for this run: a new PostgreSQL database, or an SQLite file."""
    server_url = _postgres_url()
    if server_url is None:
        path = tmp_path_factory.mktemp("template") / "smartprotect.db"
        url = f"sqlite:///{path}"
        _migrate(url)
        yield url
        return
    name = f"sp_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        _migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str) -> None:
    engine = make_engine(_settings(url))
    migrations.upgrade(engine)
    if engine.dialect.name == "sqlite":
        # Outside any transaction, so the whole database is in the main file to copy.
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    engine.dispose()


@pytest.fixture
def database_url(_template_database, tmp_path) -> Iterator[str]:
    """An empty, migrated database for one test.

    Ledger and audit tables refuse DELETE, by design; so SQLite tests each get a copy of the
    migrated file, and PostgreSQL tables are emptied with TRUNCATE (which no row trigger sees).
    """
    if _postgres_url() is None:
        source = Path(make_url(_template_database).database)
        target = tmp_path / "smartprotect.db"
        shutil.copyfile(source, target)
        yield f"sqlite:///{target}"
        return
    yield _template_database
    engine = create_engine(_template_database)
    # One-row tables the migrations fill are kept: the audit chain's head is reset below,
    # and the access counter only ever rises.
    kept = {AuditChainHead.__tablename__, AccessGeneration.__tablename__}
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables if t.name not in kept)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        connection.execute(update(AuditChainHead).values(last_seq=0, head_hash=GENESIS_HASH))
    engine.dispose()


@pytest.fixture
def engine(database_url) -> Iterator[Engine]:
    engine = make_engine(_settings(database_url))
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine, keyring):
    return make_session_factory(engine, keyring=keyring)


@pytest.fixture
def db(engine, database_url, keyring) -> Iterator[Session]:
    """A session for arranging and inspecting data; tests commit what they arrange.

    On SQLite the application's engine takes the write lock when a transaction begins, so a
    test session holding a read open would stall the server under test; this one uses
    SQLite's own deferred transactions instead, which hold no lock while only reading.
    """
    if engine.dialect.name == "sqlite":
        inspect_engine = create_engine(
            database_url, connect_args={"check_same_thread": False, "timeout": 10}
        )
        event.listen(
            inspect_engine,
            "connect",
            lambda connection, _record: connection.execute("PRAGMA foreign_keys=ON"),
        )
    else:
        inspect_engine = engine
    session = make_session_factory(inspect_engine, keyring=keyring)()
    try:
        yield session
    finally:
        session.rollback()
        session.close()
        if inspect_engine is not engine:
            inspect_engine.dispose()


# -- a real SMTP server --------------------------------------------------------------------


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def last_to(self, address: str) -> EmailMessage:
        found = self.to(address)
        assert found, f"no mail to {address}; got {[m['To'] for m in self.messages]}"
        return found[-1]

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def _smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture
def mailbox(_smtp_server) -> Mailbox:
    box, _port = _smtp_server
    box.clear()
    return box


@pytest.fixture
def smtp_port(_smtp_server) -> int:
    return _smtp_server[1]


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def link_in(message: EmailMessage, path_fragment: str) -> str:
    """The first link in a mail whose path contains the fragment."""
    for link in re.findall(r"https?://\S+", body_of(message)):
        if path_fragment in link:
            return link
    raise AssertionError(f"no {path_fragment} link in: {body_of(message)}")


# -- settings, clock and application -------------------------------------------------------


def _settings(database_url: str, **overrides) -> Settings:
    values = {
        "env": Environment.PRODUCTION,
        "secret_key": TEST_SECRET,
        "database_url": database_url,
        "base_url": "https://testserver",
        "mail_backend": MailBackend.SMTP,
        "smtp_port": 1,
        "master_key": encode_key(TEST_MASTER_KEY),
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def command_key_file(tmp_path_factory) -> Path:
    from smartprotect.signing import create

    path = tmp_path_factory.mktemp("keys") / "command-signing.key"
    create(path)
    return path


SMS_GATEWAY_TOKEN = "sms-gateway-token"


class SmsGateway(LocalReceiver):
    """The operator's SMS gateway, on this machine: it takes JSON messages with the token."""

    def __init__(self) -> None:
        super().__init__(token=SMS_GATEWAY_TOKEN)
        self.url = self.base_url + "/send"

    @property
    def messages(self) -> list[dict]:
        import json

        return [json.loads(body) for _path, _headers, body in self.received]

    def last_code(self) -> str:
        return re.search(r"\b(\d{6})\b", self.messages[-1]["text"]).group(1)


@pytest.fixture(scope="session")
def _sms_gateway() -> Iterator[SmsGateway]:
    gateway = SmsGateway()
    yield gateway
    gateway.server.shutdown()


@pytest.fixture
def sms_gateway(_sms_gateway) -> SmsGateway:
    _sms_gateway.reset()
    return _sms_gateway


@pytest.fixture
def settings(database_url, smtp_port, command_key_file, sms_gateway) -> Settings:
    return _settings(
        database_url, smtp_port=smtp_port, command_signing_key_file=command_key_file,
        sms_gateway_url=sms_gateway.url, sms_gateway_token=SMS_GATEWAY_TOKEN,
        fmd_push_to_private_addresses=True,  # the tests' push endpoints are on this machine
    )  # fmt: skip


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(master=LocalMasterKey(TEST_MASTER_KEY), secret=TEST_SECRET)


@pytest.fixture
def app(settings, clock, engine, keyring):
    app = create_app(settings, clock=clock, engine=engine, keyring=keyring)
    yield app
    if app.state.async_engine is not None:
        asyncio.run(app.state.async_engine.dispose())


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    # No lifespan: mail is delivered explicitly with `deliver`, so tests are deterministic.
    yield TestClient(app, base_url="https://testserver", follow_redirects=False)


@pytest.fixture
def deliver(session_factory, settings, clock):
    """Run one delivery round of the outbox against the test SMTP server."""

    def run() -> int:
        return deliver_pending(session_factory=session_factory, settings=settings, clock=clock)

    return run


# -- the privacy policy --------------------------------------------------------------------


def seed_policy_texts() -> dict[str, str]:
    """The company's policy, revision of 15/06/2017, as kept in policy/."""
    return {
        language: (POLICY_DIR / f"2017-06-15.{language}.txt").read_text(encoding="utf-8")
        for language in ("en", "ru")
    }


@pytest.fixture
def published_policy(session_factory, clock, keyring):
    """The 2017-06-15 revision published in both languages; returns {language: document id}."""
    with unit_of_work(session_factory) as session:
        revision, _ = policy_service.publish_revision(
            session=session,
            keyring=keyring,
            version="2017-06-15",
            texts=seed_policy_texts(),
            clock=clock,
        )
        return {document.language: document.id for document in revision.documents}


def pytest_report_header(config) -> str:
    url = _postgres_url()
    return f"database: {'PostgreSQL ' + make_url(url).host if url else 'SQLite (temporary file)'}"


@pytest.fixture
def signed_in(client, published_policy, mailbox, deliver):
    """A registered, verified user of the site, signed in (Aigerim, from the form helpers)."""
    from tests.helpers import form_page, login_via_web, register_via_web

    register_via_web(client, published_policy["en"])
    deliver()
    path = link_in(mailbox.last_to("aigerim@example.kz"), "/verify-email/")
    path = path.removeprefix("https://testserver")
    client.post(path, data={"csrf_token": form_page(client, path)})
    assert login_via_web(client, "aigerim@example.kz").status_code == 303
    return client
