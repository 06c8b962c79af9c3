"""The personal data profile page: see, change and delete what the service holds about you
(clauses 2.3, 5.4, 7.1). There are no ids in these paths: each acts on the signed-in user."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from smartprotect.accounts import service as accounts
from smartprotect.deps import ClockDep, DbSession, KeyringDep, SettingsDep
from smartprotect.errors import Conflict, NotFound, ValidationFailed, rollback_unless_kept
from smartprotect.i18n import N_, gettext_for
from smartprotect.privacy.retention.rules import RETENTION
from smartprotect.privacy.rights import erasure
from smartprotect.profile import service as profile
from smartprotect.profile.schemas import NamesUpdate, OtherInformation, PassportUpdate
from smartprotect.sms import service as sms
from smartprotect.validation import field_errors
from smartprotect.web.gates import SignedInUser
from smartprotect.web.templating import render
from smartprotect.web.views.forms import CheckedForm, redirect
from smartprotect.web.views.privacy import closed_page

router = APIRouter()

PHONE_CODE_TEXT = N_(
    "Smart Protect: your code to confirm this number is {code}. It is valid for "
    "{minutes} minutes. If you did not ask for it, ignore this message."
)


def _page(request, db, settings, keyring, user, *, form: str = "", values=None, errors=None,
          reveal_clock=None, notice: str = "", status_code: int = 200) -> Response:  # fmt: skip
    data = profile.profile_of(session=db, keyring=keyring, user=user,
                              reveal=reveal_clock is not None, clock=reveal_clock)  # fmt: skip
    return render(
        request, "accounts/profile.html", settings=settings, user=user,
        context={"profile": data, "retention": RETENTION, "form": form,
                 "values": values or {}, "errors": errors or {},
                 "notice": notice or request.query_params.get("done", "")},
        status_code=status_code,
    )  # fmt: skip


@router.get("/account/profile")
def profile_page(
    request: Request, db: DbSession, settings: SettingsDep, keyring: KeyringDep, user: SignedInUser
) -> Response:
    return _page(request, db, settings, keyring, user)


def _invalid(request, db, settings, keyring, user, form, values, errors, exc=None) -> Response:
    rollback_unless_kept(db, exc)
    return _page(request, db, settings, keyring, user, form=form, values=values, errors=errors,
                 status_code=422)  # fmt: skip


@router.post("/account/profile/names")
def change_names(request: Request, form: CheckedForm, db: DbSession, settings: SettingsDep,
                 clock: ClockDep, keyring: KeyringDep, user: SignedInUser) -> Response:  # fmt: skip
    try:
        names = NamesUpdate(**{k: form.get(k) for k in ("last_name", "first_name", "patronymic")})
    except ValidationError as exc:
        return _invalid(request, db, settings, keyring, user, "names", form, field_errors(exc))
    profile.change_names(session=db, keyring=keyring, user=user, names=names, clock=clock)
    return redirect(request, "/account/profile", query="done=names")


@router.post("/account/profile/phone")
def change_phone(request: Request, form: CheckedForm, db: DbSession, settings: SettingsDep,
                 clock: ClockDep, keyring: KeyringDep, user: SignedInUser) -> Response:  # fmt: skip
    try:
        profile.change_phone(session=db, keyring=keyring, user=user, phone=form.get("phone", ""),
                             clock=clock)  # fmt: skip
    except ValidationFailed as exc:
        return _invalid(request, db, settings, keyring, user, "phone", form, exc.errors)
    return redirect(request, "/account/profile", query="done=phone")


@router.post("/account/profile/phone/code")
def send_phone_code(
    request: Request, form: CheckedForm, db: DbSession, settings: SettingsDep, clock: ClockDep,
    keyring: KeyringDep, user: SignedInUser,
) -> Response:  # fmt: skip
    try:
        code = profile.request_phone_confirmation(session=db, keyring=keyring, user=user,
                                                  clock=clock)  # fmt: skip
        text = gettext_for(user.language)(PHONE_CODE_TEXT).format(
            code=code, minutes=int(profile.CODE_TTL.total_seconds() // 60))  # fmt: skip
        # Sent before the code is committed: a code that never arrived must not hold back
        # the next one for a minute.
        sms.send(settings=settings, to=user.phone, text=text)
    except (ValidationFailed, sms.SmsUnavailable) as exc:
        errors = exc.errors if isinstance(exc, ValidationFailed) else {"code": exc.message}
        return _invalid(request, db, settings, keyring, user, "phone_code", form, errors)
    return redirect(request, "/account/profile", query="done=phone_code")


@router.post("/account/profile/phone/confirm")
def confirm_phone(
    request: Request, form: CheckedForm, db: DbSession, settings: SettingsDep, clock: ClockDep,
    keyring: KeyringDep, user: SignedInUser,
) -> Response:  # fmt: skip
    try:
        profile.confirm_phone(session=db, keyring=keyring, user=user, code=form.get("code", ""),
                              clock=clock)  # fmt: skip
    except ValidationFailed as exc:
        return _invalid(request, db, settings, keyring, user, "phone_code", form, exc.errors, exc)
    return redirect(request, "/account/profile", query="done=phone_confirmed")


@router.post("/account/profile/email")
def change_email(request: Request, form: CheckedForm, db: DbSession, settings: SettingsDep,
                 clock: ClockDep, keyring: KeyringDep, user: SignedInUser) -> Response:  # fmt: skip
    try:
        accounts.request_email_change(
            session=db, keyring=keyring, user=user, new_email=form.get("email", ""),
            password=form.get("password", ""), clock=clock,
            links=accounts.Links(base_url=settings.base_url),
        )  # fmt: skip
    except ValidationFailed as exc:
        return _invalid(request, db, settings, keyring, user, "email", form, exc.errors, exc)
    return redirect(request, "/account/profile", query="done=email")


@router.post("/account/profile/passport")
def set_passport(request: Request, form: CheckedForm, db: DbSession, settings: SettingsDep,
                 clock: ClockDep, keyring: KeyringDep, user: SignedInUser) -> Response:  # fmt: skip
    try:
        passport = PassportUpdate(number=form.get("number", ""), issued_on=form.get("issued_on"),
                                  authority=form.get("authority", ""))  # fmt: skip
        profile.set_passport(session=db, keyring=keyring, user=user, passport=passport,
                             clock=clock)  # fmt: skip
    except ValidationError as exc:
        return _invalid(request, db, settings, keyring, user, "passport", form, field_errors(exc))
    except ValidationFailed as exc:
        return _invalid(request, db, settings, keyring, user, "passport", form, exc.errors)
    return redirect(request, "/account/profile", query="done=passport")


@router.post("/account/profile/passport/reveal")
def reveal_passport(
    request: Request, form: CheckedForm, db: DbSession, settings: SettingsDep, clock: ClockDep,
    keyring: KeyringDep, user: SignedInUser,
) -> Response:  # fmt: skip
    # A POST, so that showing passport data is a deliberate act, audited, and never cached.
    return _page(request, db, settings, keyring, user, reveal_clock=clock)


@router.post("/account/profile/other")
def set_other(request: Request, form: CheckedForm, db: DbSession, settings: SettingsDep,
              clock: ClockDep, keyring: KeyringDep, user: SignedInUser) -> Response:  # fmt: skip
    try:
        text = OtherInformation(text=form.get("text", "")).text
    except ValidationError as exc:
        return _invalid(request, db, settings, keyring, user, "other", form, field_errors(exc))
    profile.set_other_information(session=db, keyring=keyring, user=user, text=text, clock=clock)
    return redirect(request, "/account/profile", query="done=other")


@router.post("/account/profile/renew")
def renew(request: Request, form: CheckedForm, db: DbSession, settings: SettingsDep,
          clock: ClockDep, keyring: KeyringDep, user: SignedInUser) -> Response:  # fmt: skip
    profile.renew(session=db, keyring=keyring, user=user, clock=clock)
    return redirect(request, "/account/profile", query="done=renewed")


@router.post("/account/profile/{item}/delete")
def delete_item(request: Request, item: str, form: CheckedForm, db: DbSession,
                settings: SettingsDep, clock: ClockDep, keyring: KeyringDep,
                user: SignedInUser) -> Response:  # fmt: skip
    try:
        chosen = profile.Item(item)
        profile.delete_item(session=db, keyring=keyring, user=user, item=chosen, clock=clock)
    except ValueError:
        raise NotFound(N_("This page does not exist.")) from None
    except ValidationFailed as exc:
        return _invalid(request, db, settings, keyring, user, item, form, exc.errors)
    return redirect(request, "/account/profile", query="done=deleted")


@router.get("/confirm-email/{token}")
def confirm_email_form(request: Request, token: str, settings: SettingsDep) -> Response:
    # Confirming takes a POST: mail scanners that prefetch links must not use up the token.
    return render(request, "accounts/confirm_email.html", settings=settings,
                  context={"token": token})  # fmt: skip


@router.post("/confirm-email/{token}")
def confirm_email(
    request: Request, token: str, form: CheckedForm, db: DbSession, clock: ClockDep,
    settings: SettingsDep, keyring: KeyringDep,
) -> Response:  # fmt: skip
    try:
        accounts.confirm_email_change(session=db, raw_token=token, clock=clock, keyring=keyring)
    except (NotFound, Conflict) as exc:
        db.rollback()
        return render(request, "accounts/confirm_email.html", settings=settings,
                      context={"token": token, "error": exc.message},
                      status_code=exc.status_code)  # fmt: skip
    return redirect(request, "/account/profile", query="done=email_confirmed")


@router.post("/account/delete")
def delete_account(
    request: Request, form: CheckedForm, db: DbSession, settings: SettingsDep, clock: ClockDep,
    keyring: KeyringDep, user: SignedInUser,
) -> Response:  # fmt: skip
    """Erase the whole account (clause 7.1), confirmed by the password."""
    try:
        report = erasure.close_account(session=db, keyring=keyring, user=user, clock=clock,
                                       password=form.get("password", ""))  # fmt: skip
    except ValidationFailed as exc:
        return _invalid(request, db, settings, keyring, user, "delete", {}, exc.errors, exc)
    return closed_page(request, settings, report)
