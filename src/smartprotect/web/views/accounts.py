"""Account pages: register, verify, sign in and out, password reset, the account page."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from smartprotect.accounts import service as accounts
from smartprotect.accounts.schemas import (
    ApiTokenCreate,
    LoginRequest,
    NewPassword,
    PasswordResetRequest,
    RegistrationConsents,
    UserCreate,
)
from smartprotect.deps import (
    ClockDep,
    DbSession,
    KeyringDep,
    OptionalUser,
    SettingsDep,
    client_address,
    session_cookie_name,
)
from smartprotect.errors import (
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
    ValidationFailed,
)
from smartprotect.i18n import N_
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import Channel
from smartprotect.privacy.policy import service as policy
from smartprotect.validation import field_errors
from smartprotect.web.gates import SignedInUser
from smartprotect.web.templating import language, render
from smartprotect.web.views.forms import CheckedForm, checkbox, forget_session, redirect, safe_next

router = APIRouter()

REGISTRATION_FIELDS = ("email", "phone", "last_name", "first_name", "patronymic")
CONSENT_FIELDS = ("accept_policy", "consent_processing", "marketing_email", "marketing_sms")


def _links(settings) -> accounts.Links:
    return accounts.Links(base_url=settings.base_url)


# -- registration --------------------------------------------------------------------------


def _register_page(request, db, settings, *, values=None, errors=None, status_code=200):
    document = policy.document_in_force(session=db, language=language(request))
    return render(
        request,
        "accounts/register.html",
        settings=settings,
        context={
            "document": document,
            "values": values or {},
            "errors": errors or {},
        },
        status_code=status_code if document else 503,
    )


@router.get("/register")
def register_form(request: Request, db: DbSession, settings: SettingsDep) -> Response:
    return _register_page(request, db, settings)


@router.post("/register")
def register_submit(
    request: Request,
    form: CheckedForm,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
) -> Response:
    values = {name: form.get(name, "") for name in REGISTRATION_FIELDS}
    values.update({name: checkbox(form, name) for name in CONSENT_FIELDS})
    lang = language(request)
    errors: dict[str, str] = {}
    data = None
    try:
        data = UserCreate(
            **{name: form.get(name, "") for name in REGISTRATION_FIELDS},
            password=form.get("password", ""),
            language=lang,
        )
    except ValidationError as exc:
        errors.update(field_errors(exc))
    if form.get("password", "") != form.get("password_confirm", ""):
        errors.setdefault("password_confirm", N_("The two passwords differ."))
    try:
        consents = RegistrationConsents(
            policy_document_id=form.get("policy_document_id", ""),
            **{name: checkbox(form, name) for name in CONSENT_FIELDS},
        )
        # Checked even when other fields are wrong, so every error shows at once.
        errors.update(
            accounts.registration_consent_errors(session=db, language=lang, consents=consents)
        )
    except ValidationError:
        errors["policy"] = accounts.POLICY_CHANGED
    except PermissionDenied:
        return _register_page(request, db, settings, values=values, status_code=503)
    if errors or data is None:
        return _register_page(request, db, settings, values=values, errors=errors, status_code=422)
    accounts.register(
        session=db,
        data=data,
        consents=consents,
        channel=Channel.WEB,
        clock=clock,
        links=_links(settings),
        user_agent=request.headers.get("user-agent"),
        client_ip=client_address(request),
        keyring=keyring,
    )
    return redirect(request, "/register/done")


@router.get("/register/done")
def register_done(request: Request, settings: SettingsDep) -> Response:
    return render(request, "accounts/register_done.html", settings=settings)


@router.get("/verify-email/{token}")
def verify_email_form(request: Request, token: str, settings: SettingsDep) -> Response:
    # Confirming takes a POST: mail scanners that prefetch links must not use up the token.
    return render(
        request, "accounts/verify_email.html", settings=settings, context={"token": token}
    )


@router.post("/verify-email/{token}")
def verify_email_submit(
    request: Request,
    token: str,
    form: CheckedForm,
    db: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    keyring: KeyringDep,
) -> Response:
    try:
        accounts.verify_email(session=db, raw_token=token, clock=clock, keyring=keyring)
    except NotFound as exc:
        db.rollback()
        return render(
            request,
            "accounts/verify_email.html",
            settings=settings,
            context={"token": token, "error": exc.message},
            status_code=404,
        )
    return redirect(request, "/login", query="verified=1")


@router.get("/resend-verification")
def resend_form(request: Request, settings: SettingsDep) -> Response:
    return render(request, "accounts/resend_verification.html", settings=settings)


@router.post("/resend-verification")
def resend_submit(
    request: Request, form: CheckedForm, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> Response:
    try:
        email = PasswordResetRequest(email=form.get("email", "")).email
    except ValidationError as exc:
        return render(
            request,
            "accounts/resend_verification.html",
            settings=settings,
            context={"errors": field_errors(exc), "values": {"email": form.get("email", "")}},
            status_code=422,
        )
    accounts.resend_verification(session=db, email=email, clock=clock, links=_links(settings))
    return render(
        request, "accounts/resend_verification.html", settings=settings, context={"sent": True}
    )


# -- signing in and out --------------------------------------------------------------------


@router.get("/login")
def login_form(
    request: Request, settings: SettingsDep, user: OptionalUser, next: str = ""
) -> Response:
    if user is not None:
        return redirect(request, safe_next(next))
    return render(
        request,
        "accounts/login.html",
        settings=settings,
        context={
            "next": next,
            "verified": request.query_params.get("verified") == "1",
            "reset_done": request.query_params.get("reset") == "1",
            "logged_out": request.query_params.get("logged_out") == "1",
            "values": {},
        },
    )


@router.post("/login")
def login_submit(
    request: Request,
    form: CheckedForm,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
) -> Response:
    next_path = form.get("next", "")
    context: dict[str, object] = {"next": next_path, "values": {"email": form.get("email", "")}}
    try:
        credentials = LoginRequest(email=form.get("email", ""), password=form.get("password", ""))
    except ValidationError as exc:
        context["errors"] = field_errors(exc)
        return render(
            request, "accounts/login.html", settings=settings, context=context, status_code=422
        )
    try:
        user = accounts.authenticate(
            session=db,
            email=credentials.email,
            password=credentials.password,
            client=client_address(request),
            keyring=keyring,
            clock=clock,
        )
    except NotAuthenticated as exc:
        # Not rolled back: the failed attempt is what the throttle counts.
        context["error"] = exc.message
        return render(
            request, "accounts/login.html", settings=settings, context=context, status_code=401
        )
    except PermissionDenied as exc:
        db.rollback()
        context["error"] = exc.message
        context["unverified"] = True
        return render(
            request, "accounts/login.html", settings=settings, context=context, status_code=403
        )
    except TooManyAttempts as exc:
        # Not rolled back either: the refusal is audited.
        context["error"] = exc.message
        context["error_params"] = exc.params
        response = render(
            request, "accounts/login.html", settings=settings, context=context, status_code=429
        )
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    raw = accounts.start_session(session=db, user=user, clock=clock)
    response = redirect(request, safe_next(next_path))
    response.set_cookie(
        session_cookie_name(settings),
        raw,
        max_age=int(accounts.SESSION_MAX_AGE.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )
    return response


@router.post("/logout")
def logout(
    request: Request,
    form: CheckedForm,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
) -> Response:
    raw = request.cookies.get(session_cookie_name(settings))
    if raw:
        accounts.end_session(session=db, raw_token=raw, keyring=keyring, clock=clock)
    response = redirect(request, "/login", query="logged_out=1")
    forget_session(response, settings)
    return response


# -- password reset ------------------------------------------------------------------------


@router.get("/password-reset")
def reset_request_form(request: Request, settings: SettingsDep) -> Response:
    return render(request, "accounts/password_reset_request.html", settings=settings)


@router.post("/password-reset")
def reset_request_submit(
    request: Request,
    form: CheckedForm,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
) -> Response:
    try:
        email = PasswordResetRequest(email=form.get("email", "")).email
    except ValidationError as exc:
        return render(
            request,
            "accounts/password_reset_request.html",
            settings=settings,
            context={"errors": field_errors(exc), "values": {"email": form.get("email", "")}},
            status_code=422,
        )
    accounts.request_password_reset(
        session=db, email=email, clock=clock, links=_links(settings), keyring=keyring
    )
    return render(
        request, "accounts/password_reset_request.html", settings=settings, context={"sent": True}
    )


@router.get("/password-reset/{token}")
def reset_form(
    request: Request, token: str, db: DbSession, settings: SettingsDep, clock: ClockDep
) -> Response:
    try:
        accounts.check_reset_token(session=db, raw_token=token, clock=clock)
    except NotFound as exc:
        return render(
            request,
            "accounts/password_reset.html",
            settings=settings,
            context={"invalid": exc.message},
            status_code=404,
        )
    return render(request, "accounts/password_reset.html", settings=settings, context={})


@router.post("/password-reset/{token}")
def reset_submit(
    request: Request,
    token: str,
    form: CheckedForm,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
) -> Response:
    try:
        NewPassword(
            password=form.get("password", ""), password_confirm=form.get("password_confirm", "")
        )
        accounts.reset_password(
            session=db,
            raw_token=token,
            password=form.get("password", ""),
            password_confirm=form.get("password_confirm", ""),
            clock=clock,
            keyring=keyring,
        )
    except ValidationError as exc:
        return render(
            request,
            "accounts/password_reset.html",
            settings=settings,
            context={"errors": field_errors(exc)},
            status_code=422,
        )
    except ValidationFailed as exc:
        db.rollback()
        return render(
            request,
            "accounts/password_reset.html",
            settings=settings,
            context={"errors": exc.errors},
            status_code=422,
        )
    except NotFound as exc:
        db.rollback()
        return render(
            request,
            "accounts/password_reset.html",
            settings=settings,
            context={"invalid": exc.message},
            status_code=404,
        )
    response = redirect(request, "/login", query="reset=1")
    forget_session(response, settings)
    return response


# -- the account page and personal API tokens ----------------------------------------------


def _account_page(request, db, settings, user, *, new_token=None, errors=None, status_code=200):
    is_htmx = request.headers.get("hx-request") == "true"
    template = "accounts/_tokens.html" if is_htmx else "accounts/account.html"
    return render(
        request,
        template,
        settings=settings,
        user=user,
        context={
            "tokens": accounts.list_api_tokens(session=db, user=user),
            "consents": consent.current_state(session=db, subject_id=user.id),
            "purpose_labels": consent.PURPOSE_LABELS,
            "new_token": new_token,
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/account")
def account(request: Request, db: DbSession, settings: SettingsDep, user: SignedInUser) -> Response:
    return _account_page(request, db, settings, user)


@router.post("/account/tokens")
def create_token(
    request: Request,
    form: CheckedForm,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    user: SignedInUser,
    keyring: KeyringDep,
) -> Response:
    try:
        name = ApiTokenCreate(name=form.get("name", "")).name
        _token, raw = accounts.create_api_token(
            session=db, user=user, name=name, clock=clock, keyring=keyring
        )
    except ValidationError as exc:
        return _account_page(request, db, settings, user, errors=field_errors(exc), status_code=422)
    except ValidationFailed as exc:
        db.rollback()
        return _account_page(request, db, settings, user, errors=exc.errors, status_code=422)
    return _account_page(request, db, settings, user, new_token=raw, status_code=201)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(
    request: Request,
    token_id: uuid.UUID,
    form: CheckedForm,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    user: SignedInUser,
    keyring: KeyringDep,
) -> Response:
    accounts.revoke_api_token(
        session=db, user=user, token_id=token_id, clock=clock, keyring=keyring
    )
    return _account_page(request, db, settings, user)
