"""Public pages: home and the language switcher."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from smartprotect.deps import DbSession, OptionalUser, SettingsDep
from smartprotect.i18n import LANGUAGES
from smartprotect.privacy.policy import service as policy
from smartprotect.web.gates import PolicyReviewRequired
from smartprotect.web.language import LANGUAGE_COOKIE, localized
from smartprotect.web.templating import render

router = APIRouter()
LANGUAGE_COOKIE_MAX_AGE_SECONDS = 60 * 60 * 24 * 365


@router.get("/")
def home(request: Request, db: DbSession, settings: SettingsDep, user: OptionalUser) -> Response:
    if user is not None and policy.status(session=db, subject_id=user.id) is policy.Status.PENDING:
        raise PolicyReviewRequired
    return render(request, "home.html", settings=settings, user=user)


@router.get("/lang/{code}")
def switch_language(
    request: Request, code: str, settings: SettingsDep, next: str = "/"
) -> Response:
    if code not in LANGUAGES:
        code = "en"
    path = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(localized(path, code), status_code=303)
    response.set_cookie(
        LANGUAGE_COOKIE,
        code,
        max_age=LANGUAGE_COOKIE_MAX_AGE_SECONDS,
        samesite="lax",
        secure=settings.secure_cookies,
        httponly=True,
    )
    return response
