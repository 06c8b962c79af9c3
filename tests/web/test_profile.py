"""The personal data page: a user sees, changes and deletes their own data, and only theirs."""

from __future__ import annotations

from sqlalchemy import func, select

from smartprotect.accounts.models import User
from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from smartprotect.i18n import translations
from smartprotect.profile.models import PhoneConfirmation
from tests.conftest import link_in
from tests.helpers import PASSWORD, form_page, login_via_web
from tests.web.conftest import EMAIL

PAGE = "/account/profile"


def _post(client, path, **data):
    return client.post(path, data={"csrf_token": form_page(client, PAGE), **data})


def test_the_page_shows_each_item_with_when_it_was_given(signed_in):
    html = signed_in.get(PAGE).text
    assert EMAIL in html and "+77012345678" in html and "Сейткали" in html
    assert "given on 2026-01-01; kept until 2027-01-01" in html
    assert "never a scan" in html


def test_passport_saved_masked_revealed_on_request_and_deleted(signed_in, db):
    response = _post(signed_in, PAGE + "/passport", number="N 12345678", authority="МВД РК",
                     issued_on="2019-05-17")  # fmt: skip
    assert response.status_code == 303
    html = signed_in.get(PAGE + "?done=passport").text
    assert "encrypted" in html and "N12345678" not in html and "•••••••78" in html
    assert "МВД РК" not in html
    revealed = _post(signed_in, PAGE + "/passport/reveal")
    assert (
        revealed.status_code == 200
        and "N12345678" in revealed.text
        and "2019-05-17" in revealed.text
    )
    assert revealed.headers["cache-control"] == "no-store"
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == Tag.PROFILE_PASSPORT_REVEALED))
    assert _post(signed_in, PAGE + "/passport/delete").status_code == 303
    assert "•••••••78" not in signed_in.get(PAGE).text


def test_bad_input_is_shown_next_to_its_field_and_changes_nothing(signed_in, db):
    response = _post(signed_in, PAGE + "/passport", number="1", authority="", issued_on="")
    assert response.status_code == 422
    assert "Enter the number as printed" in response.text
    response = _post(signed_in, PAGE + "/phone", phone="12")
    assert response.status_code == 422 and "Enter a valid phone number" in response.text
    response = _post(signed_in, PAGE + "/email", email="new@example.kz", password="wrong password")
    assert response.status_code == 422 and "The password is incorrect." in response.text
    user = db.scalar(select(User))
    assert (user.phone, user.pending_email) == ("+77012345678", None)
    assert _post(signed_in, PAGE + "/nothing/delete").status_code == 404
    assert _post(signed_in, PAGE + "/phone/delete").status_code == 422


def test_names_and_phone_are_changed_and_names_deleted(signed_in, db):
    assert _post(signed_in, PAGE + "/names", last_name="Ахметова", first_name="Айгерим",
                 patronymic="").status_code == 303  # fmt: skip
    assert _post(signed_in, PAGE + "/phone", phone="+7 777 123 4567").status_code == 303
    html = signed_in.get(PAGE + "?done=phone").text
    assert "Ахметова" in html and "+77771234567" in html and "not confirmed" in html
    assert _post(signed_in, PAGE + "/names/delete").status_code == 303
    db.expire_all()
    user = db.scalar(select(User))
    assert (user.last_name, user.first_name, user.names_provided_at) == (None, None, None)


def test_a_new_email_address_is_used_only_once_confirmed(signed_in, db, mailbox, deliver):
    mailbox.clear()
    assert _post(signed_in, PAGE + "/email", email="New@Example.kz",
                 password=PASSWORD).status_code == 303  # fmt: skip
    deliver()
    # The old address is told, and stays the account's until the new one is confirmed.
    assert "being changed" in mailbox.last_to(EMAIL)["Subject"]
    db.expire_all()
    assert db.scalar(select(User)).email == EMAIL
    assert "Waiting for confirmation: new@example.kz" in signed_in.get(PAGE).text
    path = link_in(mailbox.last_to("new@example.kz"), "/confirm-email/")
    path = path.removeprefix("https://testserver")
    assert signed_in.get(path).status_code == 200  # a prefetch uses nothing up
    response = signed_in.post(path, data={"csrf_token": form_page(signed_in, path)})
    assert response.status_code == 303
    db.expire_all()
    user = db.scalar(select(User))
    assert (user.email, user.pending_email) == ("new@example.kz", None)
    again = signed_in.post(path, data={"csrf_token": form_page(signed_in, path)})
    assert again.status_code == 404  # the link works once
    signed_in.post("/logout", data={"csrf_token": form_page(signed_in, PAGE)})
    assert login_via_web(signed_in, "new@example.kz").status_code == 303


def test_the_page_needs_a_signed_in_user_and_has_no_one_elses_data(client, signed_in):
    signed_in.post("/logout", data={"csrf_token": form_page(signed_in, PAGE)})
    assert client.get(PAGE).status_code == 303  # to the sign-in page
    token = form_page(client, "/login")
    assert client.post(PAGE + "/passport/reveal", data={"csrf_token": token}).status_code == 303


def test_the_page_in_russian(signed_in):
    _ = translations("ru").gettext
    html = signed_in.get("/ru" + PAGE).text
    assert _("My personal data") in html and _("Passport data") in html
    assert _("Other information") in html


def test_the_page_says_how_long_the_account_is_kept_and_renews_it(signed_in, db, clock):
    from datetime import timedelta

    assert "kept until 2027-01-01" in signed_in.get(PAGE).text
    clock.advance(timedelta(days=10))  # within the sign-in session's 14 days
    assert _post(signed_in, PAGE + "/renew").status_code == 303
    html = signed_in.get(PAGE + "?done=renewed").text
    assert "their year starts again today" in html and "kept until 2027-01-11" in html
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == Tag.PROFILE_RENEWED))


def test_signing_in_gives_the_address_again(signed_in, db, clock):
    from datetime import timedelta

    clock.advance(timedelta(days=10))
    signed_in.post("/logout", data={"csrf_token": form_page(signed_in, PAGE)})
    assert login_via_web(signed_in, EMAIL).status_code == 303
    db.expire_all()
    assert db.scalar(select(User.email_provided_at)) == clock.now()


def test_re_entered_passwords_are_throttled_like_sign_ins(signed_in, db):
    from smartprotect.accounts.models import LoginAttempt

    for _ in range(5):
        response = _post(signed_in, PAGE + "/email", email="new@example.kz", password="guess 1")
        assert response.status_code == 422 and "The password is incorrect." in response.text
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(LoginAttempt)) == 5  # they were kept
    # A stolen session cannot go on guessing: even the right password waits now.
    response = _post(signed_in, "/account/delete", password=PASSWORD)
    assert response.status_code == 422 and "Too many wrong passwords" in response.text
    db.expire_all()
    assert db.scalar(select(User)).pending_email is None
    assert db.scalar(select(func.count()).select_from(User)) == 1


def test_a_phone_number_is_confirmed_by_a_texted_code(signed_in, db, sms_gateway):
    html = signed_in.get(PAGE).text
    assert "not confirmed" in html and "Text me a code" in html
    assert _post(signed_in, PAGE + "/phone/code").status_code == 303
    (message,) = sms_gateway.messages
    assert message["to"] == "+77012345678" and "valid for 10 minutes" in message["text"]
    # A wrong code is refused, and counted even though the request fails.
    wrong = _post(signed_in, PAGE + "/phone/confirm", code="000000")
    if sms_gateway.last_code() == "000000":
        wrong = _post(signed_in, PAGE + "/phone/confirm", code="111111")
    assert wrong.status_code == 422 and "The code is incorrect." in wrong.text
    assert db.scalar(select(PhoneConfirmation.attempts)) == 1
    assert db.scalar(select(User)).phone_verified_at is None

    right = _post(signed_in, PAGE + "/phone/confirm", code=sms_gateway.last_code())
    assert right.status_code == 303
    db.expire_all()
    assert db.scalar(select(User)).phone_verified_at is not None
    html = signed_in.get(PAGE + "?done=phone_confirmed").text
    assert "Your phone number is confirmed." in html and "not confirmed" not in html
    tags = set(db.scalars(select(AuditEvent.action)))
    assert {Tag.PROFILE_PHONE_CODE_SENT, Tag.PROFILE_PHONE_CONFIRMED} <= tags
    # The code itself is nowhere in the database, only its keyed hash.
    assert sms_gateway.last_code() not in db.scalar(select(PhoneConfirmation.code_hash))


def test_a_code_that_could_not_be_sent_changes_nothing(signed_in, db, sms_gateway):
    sms_gateway.failing = True
    response = _post(signed_in, PAGE + "/phone/code")
    assert response.status_code == 422
    assert "could not be sent" in response.text
    assert db.scalar(select(func.count()).select_from(PhoneConfirmation)) == 0
    # Nor does it hold back the next code.
    sms_gateway.failing = False
    assert _post(signed_in, PAGE + "/phone/code").status_code == 303
    assert len(sms_gateway.messages) == 1
