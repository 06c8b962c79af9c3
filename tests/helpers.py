"""Helpers for arranging accounts in tests."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import text

PASSWORD = "correct horse battery"


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token in page"
    return match.group(1)


def form_page(client: TestClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return csrf_from(response.text)


def registration_form(policy_id, **overrides) -> dict[str, str]:
    form = {
        "email": "aigerim@example.kz",
        "phone": "+7 701 234 5678",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        "last_name": "Сейткали",
        "first_name": "Айгерим",
        "patronymic": "Нурлановна",
        "policy_document_id": str(policy_id),
        "accept_policy": "on",
        "consent_processing": "on",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def register_via_web(client: TestClient, policy_id, prefix: str = "", **overrides):
    token = form_page(client, f"{prefix}/register")
    return client.post(
        f"{prefix}/register",
        data={**registration_form(policy_id, **overrides), "csrf_token": token},
    )


def login_via_web(client: TestClient, email: str, password: str = PASSWORD, prefix: str = ""):
    token = form_page(client, f"{prefix}/login")
    return client.post(
        f"{prefix}/login", data={"email": email, "password": password, "csrf_token": token}
    )


def add_owner(session, *, clock, keyring, **overrides):
    """A verified user with a data key, added to the session (a device owner in tests)."""
    from smartprotect.accounts.service import create_user

    values = {
        "email": "owner@example.kz", "phone": "+77010000001", "password_hash": "x",
        "language": "en", "created_at": clock.now(), "password_changed_at": clock.now(),
        "email_verified_at": clock.now(),
    } | overrides  # fmt: skip
    return create_user(session=session, keyring=keyring, clock=clock, **values)


def queue_mail(
    session_factory, clock, recipient="owner@example.kz", subject="Тема", body="Привет, https://x/y"
):
    """Mail queued (and committed) for the account with this address, made if need be."""
    from smartprotect.accounts import service as accounts
    from smartprotect.db import KEYRING, unit_of_work
    from smartprotect.mail import service as mail

    with unit_of_work(session_factory) as session:
        owner = accounts.get_by_email(session=session, email=recipient) or add_owner(
            session, clock=clock, keyring=session.info[KEYRING], email=recipient)  # fmt: skip
        mail.enqueue(session=session, recipient=recipient, subject=subject, body_text=body,
                     clock=clock, user_id=owner.id)  # fmt: skip


def add_device(session, *, keyring, clock, owner, capabilities=("locate",)):
    """A device of `owner`, enrolled through a code with these capabilities."""
    from smartprotect.devices import service as devices
    from smartprotect.devices.models import Capability
    from smartprotect.devices.schemas import EnrollRequest

    capabilities = [Capability(c) for c in capabilities]
    _, code = devices.create_enrollment_code(
        session=session, keyring=keyring, user=owner, device_name="Phone",
        capabilities=capabilities, clock=clock,
    )  # fmt: skip
    device, _ = devices.enroll(
        session=session, keyring=keyring, clock=clock,
        request=EnrollRequest(code=code, platform="linux", allowed=capabilities),
    )  # fmt: skip
    return device


_fixes_reported = itertools.count(1)


def report_fix(session, *, keyring, clock, device, latitude=43.2, longitude=76.9):
    """The device checks in with one fix taken now: the clock's time, plus as many
    microseconds as fixes were reported before (a device's fixes are told apart by their
    time, and those reported later are later)."""
    from smartprotect.devices import service as devices
    from smartprotect.devices.schemas import CheckIn, LocationFix

    taken = clock.now() + timedelta(microseconds=next(_fixes_reported))
    fix = LocationFix(latitude=latitude, longitude=longitude, accuracy_m=10, method="gps",
                      fixed_at=taken)  # fmt: skip
    (outcome,) = devices.check_in_many(
        session=session, keyring=keyring, clock=clock,
        reports=[devices.Report(credential_hash=device.credential_hash,
                                report=CheckIn(locations=[fix]))],
    )  # fmt: skip
    assert outcome.error is None and outcome.locations_stored == 1


class LocalReceiver:
    """An HTTP server on this machine standing in for a service the server posts to (an SMS
    gateway, a UnifiedPush endpoint): it records each POST as (path, headers, body), refuses
    a wrong bearer token when it has one, and can be made to fail."""

    def __init__(self, *, token: str | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver = self
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        self.failing = False

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
                    self.send_response(401)
                elif receiver.failing:
                    self.send_response(502)
                else:
                    receiver.received.append((self.path, dict(self.headers), body))
                    receiver.arrived.set()
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        self.received.clear()
        self.arrived.clear()
        self.failing = False


def blocked(connection, thread, seconds: float = 10) -> bool:
    """Whether, within `seconds`, some session of this PostgreSQL database waits for a lock
    (what runs in `thread`, waiting for one that `connection`, or another session, holds)."""
    for _ in range(int(seconds * 100)):
        waiting = connection.execute(text(
            "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid)"
            " WHERE NOT granted AND datname = current_database()"
        )).scalar()  # fmt: skip
        if waiting:
            return True
        thread.join(0.01)
    return False
