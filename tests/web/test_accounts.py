"""The account pages, through HTTP: forms, errors, cookies, CSRF and both languages."""

from __future__ import annotations

from sqlalchemy import func, select

from smartprotect.accounts.models import User, WebSession
from smartprotect.privacy.consent.models import ConsentEvent
from smartprotect.privacy.policy.models import PolicyAcceptance
from tests.conftest import body_of, link_in
from tests.helpers import PASSWORD, form_page, login_via_web, register_via_web

EMAIL = "aigerim@example.kz"


def _count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def _verify(client, mailbox, deliver, prefix=""):
    deliver()
    link = link_in(mailbox.last_to(EMAIL), "/verify-email/")
    path = link.removeprefix("https://testserver")
    token = form_page(client, path)
    return client.post(path, data={"csrf_token": token})


def test_register_verify_login_logout(client, db, published_policy, mailbox, deliver):
    response = register_via_web(client, published_policy["en"])
    assert response.status_code == 303
    assert response.headers["location"] == "/register/done"
    assert _count(db, User) == 1

    response = _verify(client, mailbox, deliver)
    assert response.headers["location"] == "/en/login?verified=1"

    response = login_via_web(client, EMAIL)
    assert response.status_code == 303 and response.headers["location"] == "/account"
    cookie = response.headers["set-cookie"]
    assert "__Host-sp_session=" in cookie
    assert "HttpOnly" in cookie and "Secure" in cookie and "samesite=lax" in cookie.lower()

    page = client.get("/account")
    assert page.status_code == 200 and EMAIL in page.text

    token = form_page(client, "/account")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.headers["location"] == "/login?logged_out=1"
    assert _count(db, WebSession) == 0
    assert client.get("/account").status_code == 303


def test_the_whole_flow_in_russian(client, published_policy, mailbox, deliver):
    page = client.get("/ru/register")
    assert page.status_code == 200
    assert '<html lang="ru">' in page.text
    assert "Зарегистрироваться" in page.text or "Регистрация" in page.text
    assert "Политика конфиденциальности" in page.text  # the Russian text of the policy

    response = register_via_web(client, published_policy["ru"], prefix="/ru")
    assert response.headers["location"] == "/ru/register/done"
    deliver()
    message = mailbox.last_to(EMAIL)
    assert "Platinum Protection" in message["Subject"]
    assert any(ch in body_of(message) for ch in "абвгдежз")  # mailed in Russian
    assert "/ru/verify-email/" in body_of(message)

    response = _verify(client, mailbox, deliver)
    assert response.headers["location"] == "/ru/login?verified=1"
    response = login_via_web(client, EMAIL, prefix="/ru")
    assert response.headers["location"] == "/ru/account"
    assert "Выйти" in client.get("/ru/account").text


def test_registration_errors_are_shown_next_to_fields_and_nothing_is_written(
    client, db, published_policy
):
    response = register_via_web(
        client,
        published_policy["en"],
        email="not-an-email",
        phone="12",
        password="short",
        password_confirm="different",
        consent_processing=None,
    )
    assert response.status_code == 422
    html = response.text
    for field in ("email", "phone", "password", "password_confirm", "consent_processing"):
        assert f'id="e-{field}"' in html, field
    assert "Enter a valid email address." in html
    assert 'value="not-an-email"' in html  # what was typed is kept
    assert 'value="short"' not in html  # passwords are never echoed
    assert _count(db, User) == 0
    assert _count(db, ConsentEvent) == 0 and _count(db, PolicyAcceptance) == 0


def test_registration_errors_in_russian(client, published_policy):
    response = register_via_web(client, published_policy["ru"], prefix="/ru", email="nope")
    assert response.status_code == 422
    assert "Enter a valid email address." not in response.text
    assert 'id="e-email"' in response.text


def test_marketing_boxes_are_unchecked_by_default(client, published_policy):
    html = client.get("/register").text
    for name in ("marketing_email", "marketing_sms", "accept_policy", "consent_processing"):
        tag = html[html.index(f'name="{name}"') - 60 : html.index(f'name="{name}"') + 120]
        assert "checked" not in tag, name


def test_registration_shows_the_revision_in_force(client, published_policy):
    html = client.get("/register").text
    assert "2017-06-15" in html
    assert str(published_policy["en"]) in html
    assert "Smart Protect collects, accesses and uses" in html


def test_registration_is_closed_with_a_clear_message_when_no_policy_is_published(client, db):
    response = client.get("/register")
    assert response.status_code == 503
    assert "Registration is closed" in response.text
    assert '<form method="post" action="/register"' not in response.text


def test_forms_without_a_valid_csrf_token_are_refused(client, db, published_policy):
    from tests.helpers import registration_form

    form_page(client, "/register")  # the browser has a CSRF cookie...
    response = client.post("/register", data=registration_form(published_policy["en"]))
    assert response.status_code == 403  # ...but the form carries no token
    response = client.post(
        "/register", data={**registration_form(published_policy["en"]), "csrf_token": "0" * 64}
    )
    assert response.status_code == 403
    assert _count(db, User) == 0


def test_a_token_from_another_browser_is_refused(app, client, published_policy):
    from fastapi.testclient import TestClient

    from tests.helpers import registration_form

    token = form_page(client, "/register")
    other = TestClient(app, base_url="https://testserver", follow_redirects=False)
    form_page(other, "/register")
    response = other.post(
        "/register", data={**registration_form(published_policy["en"]), "csrf_token": token}
    )
    assert response.status_code == 403


def test_wrong_password_shows_an_error_and_the_throttle_engages(client, db, published_policy):
    from smartprotect.accounts.service import MAX_FAILURES_PER_ACCOUNT_AND_CLIENT

    for _ in range(MAX_FAILURES_PER_ACCOUNT_AND_CLIENT):
        response = login_via_web(client, EMAIL, password="not the password")
        assert response.status_code == 401
        assert "The email or password is incorrect." in response.text
    response = login_via_web(client, EMAIL, password="not the password")
    assert response.status_code == 429
    assert "Too many failed sign-in attempts. Try again in 15 minutes." in response.text
    assert response.headers["retry-after"] == "900"


def test_login_redirects_only_to_local_paths(client, published_policy, mailbox, deliver):
    register_via_web(client, published_policy["en"])
    _verify(client, mailbox, deliver)
    token = form_page(client, "/login")
    response = client.post(
        "/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf_token": token, "next": "//evil.example"},
    )
    assert response.headers["location"] == "/account"


def test_password_reset_by_email(client, db, published_policy, mailbox, deliver):
    register_via_web(client, published_policy["en"])
    _verify(client, mailbox, deliver)
    login_via_web(client, EMAIL)

    other_browser = client.__class__(client.app, base_url="https://testserver")
    token = form_page(other_browser, "/password-reset")
    response = other_browser.post("/password-reset", data={"email": EMAIL, "csrf_token": token})
    assert "we have sent it a link" in response.text
    deliver()
    link = link_in(mailbox.last_to(EMAIL), "/password-reset/")
    path = link.removeprefix("https://testserver")

    token = form_page(other_browser, path)
    response = other_browser.post(
        path,
        data={"password": "x", "password_confirm": "x", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 422 and 'id="e-password"' in response.text

    new = "my new long passphrase"
    response = other_browser.post(
        path,
        data={"password": new, "password_confirm": new, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/en/login?reset=1"
    # The session signed in before the reset is gone.
    assert client.get("/account").status_code == 303
    assert login_via_web(client, EMAIL, password=new).headers["location"] == "/account"
    # The link is spent.
    assert other_browser.get(path).status_code == 404


def test_reset_request_for_unknown_address_looks_the_same(client, mailbox, deliver, db):
    token = form_page(client, "/password-reset")
    response = client.post(
        "/password-reset", data={"email": "ghost@example.kz", "csrf_token": token}
    )
    assert response.status_code == 200 and "we have sent it a link" in response.text
    deliver()
    assert mailbox.messages == []


def test_resend_verification(client, clock, published_policy, mailbox, deliver):
    from smartprotect.accounts.service import EMAIL_COOLDOWN

    register_via_web(client, published_policy["en"])
    deliver()
    first = link_in(mailbox.last_to(EMAIL), "/verify-email/")

    def resend():
        token = form_page(client, "/resend-verification")
        response = client.post("/resend-verification", data={"email": EMAIL, "csrf_token": token})
        assert "a new link is on its way" in response.text
        deliver()

    resend()  # within the cool-down: the page says the same, but nothing more is mailed
    assert len(mailbox.to(EMAIL)) == 1
    clock.advance(EMAIL_COOLDOWN)
    resend()
    second = link_in(mailbox.last_to(EMAIL), "/verify-email/")
    assert first != second
    # Using one link spends the other too.
    path = second.removeprefix("https://testserver")
    token = form_page(client, path)
    assert client.post(path, data={"csrf_token": token}).status_code == 303
    path = first.removeprefix("https://testserver")
    token = form_page(client, path)
    assert client.post(path, data={"csrf_token": token}).status_code == 404


def test_api_tokens_on_the_account_page(client, db, published_policy, mailbox, deliver):
    register_via_web(client, published_policy["en"])
    _verify(client, mailbox, deliver)
    login_via_web(client, EMAIL)
    token = form_page(client, "/account")
    response = client.post(
        "/account/tokens",
        data={"name": "home server", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 201
    assert 'id="tokens"' in response.text and "<html" not in response.text  # an htmx fragment
    raw = response.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert me.status_code == 200 and me.json()["email"] == EMAIL
    # Shown once: the account page does not show it again.
    assert raw not in client.get("/account").text

    response = client.post("/account/tokens", data={"name": "  ", "csrf_token": token})
    assert response.status_code == 422 and 'id="e-name"' in response.text


def test_sign_ins_consents_and_acceptances_are_audited(
    client, db, published_policy, mailbox, deliver
):
    from smartprotect.audit import service as audit
    from smartprotect.audit.models import AuditEvent

    register_via_web(client, published_policy["en"], marketing_email="on")
    _verify(client, mailbox, deliver)
    login_via_web(client, EMAIL, password="not the password")
    login_via_web(client, "stranger@example.kz", password="not the password")
    login_via_web(client, EMAIL)
    client.post("/logout", data={"csrf_token": form_page(client, "/account")})

    tags = db.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert tags == [
        "privacy:policy:publish",
        "account:user:register",
        "privacy:policy:accept",
        "privacy:consent:grant",  # processing and storage
        "privacy:consent:grant",  # cross-border transfer
        "privacy:consent:grant",  # marketing by email
        "privacy:consent:withdraw",  # marketing by SMS, left unticked
        "account:user:verify_email",
        "account:user:login_failed",
        "account:user:login_failed",
        "account:user:login",
        "account:user:logout",
    ]
    assert audit.verify_chain(session=db).ok
    raw = b"".join(
        (row.sealed_details or b"") + str(row.details).encode() + (row.subject or "").encode()
        for row in db.scalars(select(AuditEvent))
    )
    assert EMAIL.encode() not in raw and b"stranger" not in raw
