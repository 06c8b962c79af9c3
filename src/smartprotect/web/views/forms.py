"""Shared plumbing for form pages: CSRF-checked form data and redirects."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import RedirectResponse

from smartprotect.config import Settings
from smartprotect.deps import SettingsDep, session_cookie_name
from smartprotect.web import csrf
from smartprotect.web.language import is_explicit, localized
from smartprotect.web.templating import language


async def checked_form(request: Request, settings: SettingsDep) -> dict[str, str]:
    """The submitted form, after its CSRF token has been checked."""
    await csrf.verify(request, settings)
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


async def checked_origin(request: Request, settings: SettingsDep) -> None:
    """For a script's JSON request: its CSRF token (in the X-CSRF-Token header), checked."""
    await csrf.verify(request, settings)


CsrfChecked = Depends(checked_origin)


def redirect(request: Request, path: str, *, query: str = "") -> RedirectResponse:
    """A 303 to a site path in the reader's language."""
    target = localized(path, language(request), explicit=is_explicit(request.scope))
    return RedirectResponse(target + (f"?{query}" if query else ""), status_code=303)


def safe_next(value: str | None) -> str:
    """A local path to continue to after signing in; anything else goes to the account."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/account"


def checkbox(form: dict[str, str], name: str) -> bool:
    return form.get(name) in ("on", "true", "1", "yes")


def forget_session(response, settings: Settings) -> None:
    """Remove the session cookie from the browser (the session itself is ended separately)."""
    response.delete_cookie(
        session_cookie_name(settings), path="/", secure=settings.secure_cookies, httponly=True
    )
