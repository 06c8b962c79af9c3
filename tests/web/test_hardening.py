"""Hostile and odd input: CSRF on every form, redirects, control characters, concurrency,
unexpected errors."""

from __future__ import annotations

import re
import threading
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.routing import Route

from smartprotect.accounts.models import User
from smartprotect.audit.models import AuditEvent
from smartprotect.i18n import translations
from tests.helpers import PASSWORD, form_page, login_via_web, register_via_web

RU = translations("ru").gettext


def _post_paths(routes) -> list[str]:
    """Every POST path of the site's pages (walking included routers)."""
    paths = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            paths += _post_paths(included.routes)
        elif isinstance(route, Route) and "POST" in (route.methods or ()):
            paths.append(re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path))
    return paths


# Authorised by a token in the address instead, as RFC 8058's one-click POST requires (it
# comes from a mail program, with no cookie): tests/mail/test_marketing.py covers it.
NO_CSRF = ("/unsubscribe/",)


def test_every_form_refuses_a_missing_or_forged_csrf_token(client, db, published_policy):
    from smartprotect.web.views import router

    paths = [p for p in _post_paths(router.routes) if not p.startswith(NO_CSRF)]
    assert {"/register", "/login", "/logout", "/password-reset", "/account/tokens"} <= set(paths)
    assert len(paths) >= 9
    form_page(client, "/login")  # the browser holds a CSRF cookie
    audit_rows = db.scalar(select(func.count()).select_from(AuditEvent))
    for path in paths:
        for token in (None, "f" * 64):
            data = {"email": "x@example.kz", "password": PASSWORD, "name": "t"}
            if token:
                data["csrf_token"] = token
            response = client.post(path, data=data)
            assert response.status_code == 403, path
    assert db.scalar(select(func.count()).select_from(User)) == 0
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == audit_rows


@pytest.mark.parametrize(
    "target", ["//evil.example", "/\\evil.example", "https://evil.example", "/\t/evil.example",
               "\\\\evil.example", "javascript:alert(1)"],
)  # fmt: skip
def test_sign_in_never_redirects_off_site(client, published_policy, mailbox, deliver, target):
    from tests.conftest import link_in

    register_via_web(client, published_policy["en"])
    deliver()
    path = link_in(mailbox.last_to("aigerim@example.kz"), "/verify-email/").removeprefix(
        "https://testserver"
    )
    client.post(path, data={"csrf_token": form_page(client, path)})
    token = form_page(client, "/login")
    response = client.post(
        "/login",
        data={"email": "aigerim@example.kz", "password": PASSWORD, "csrf_token": token,
              "next": target},
    )  # fmt: skip
    location = response.headers["location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location


def test_control_characters_are_refused_cleanly(client, db, published_policy):
    response = register_via_web(client, published_policy["en"], first_name="Ai\x00gerim")
    assert response.status_code == 422 and 'id="e-first_name"' in response.text
    response = login_via_web(client, "a\x00@example.kz")
    assert response.status_code == 422
    response = client.get("/api/v1/policy", params={"lang": "\x00"})
    assert response.status_code == 422 and "lang" in response.json()["errors"]
    body = {
        "email": "z@example.kz", "phone": "+77017654321", "password": PASSWORD,
        "policy_document_id": str(published_policy["en"]), "accept_policy": True,
        "consent_processing": True, "last_name": "\x00",
    }  # fmt: skip
    response = client.post("/api/v1/accounts", json=body)
    assert response.status_code == 422 and "last_name" in response.json()["errors"]
    assert db.scalar(select(func.count()).select_from(User)) == 0


def test_concurrent_sign_ins_never_fail_with_a_server_error(app, published_policy):
    statuses: list[int] = []
    lock = threading.Lock()

    def guesser(number: int) -> None:
        client = TestClient(app, base_url="https://testserver", follow_redirects=False)
        for _ in range(3):
            response = login_via_web(client, f"victim{number % 3}@example.kz", "wrong guess 1")
            with lock:
                statuses.append(response.status_code)

    threads = [threading.Thread(target=guesser, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == 24
    assert set(statuses) <= {401, 429}, statuses


def test_unexpected_errors_are_problem_documents_without_details(app):
    @app.get("/api/v1/boom")
    def boom():
        raise RuntimeError("secret internals: aigerim@example.kz")

    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    response = client.get("/api/v1/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "aigerim" not in response.text and "internals" not in response.text


def test_api_401_names_the_scheme(client):
    assert client.get("/api/v1/me").headers["www-authenticate"] == "Bearer"


def test_russian_errors_are_the_russian_text(client, published_policy):
    response = register_via_web(client, published_policy["ru"], prefix="/ru", email="nope")
    assert RU("Enter a valid email address.") in response.text
    assert RU("Enter a valid email address.") != "Enter a valid email address."
    body = {"email": "nope", "phone": "+77017654321", "password": PASSWORD,
            "policy_document_id": str(published_policy["ru"]), "accept_policy": True,
            "consent_processing": True}  # fmt: skip
    problem = client.post("/api/v1/accounts", json=body, headers={"Accept-Language": "ru"})
    assert problem.json()["errors"]["email"] == RU("Enter a valid email address.")


def test_en_prefix_keeps_english_links(client):
    html = client.get("/en/login", headers={"Accept-Language": "ru"}).text
    assert '<html lang="en">' in html and 'href="/en/register"' in html
    response = client.get("/en/account")
    assert response.headers["location"].startswith("/en/login")
