"""CSRF protection for forms: a signed double-submit token.

The browser holds a random value in a cookie; each form carries an HMAC of it under the
server's secret. A cross-site page can neither read the cookie nor forge the HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request

from smartprotect.config import Settings
from smartprotect.errors import PermissionDenied
from smartprotect.i18n import N_

FORM_FIELD = "csrf_token"
HEADER = "x-csrf-token"
COOKIE_BYTES = 32
COOKIE_MAX_AGE_SECONDS = 60 * 60 * 24 * 30


class CsrfFailed(PermissionDenied):
    pass


def cookie_name(settings: Settings) -> str:
    return "__Host-sp_csrf" if settings.secure_cookies else "sp_csrf"


def _sign(settings: Settings, value: str) -> str:
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, b"csrf\x00" + value.encode(), hashlib.sha256).hexdigest()


def token_for(request: Request, settings: Settings) -> str:
    """The form token for this browser, minting the cookie value on first use."""
    value = request.cookies.get(cookie_name(settings)) or getattr(
        request.state, "csrf_new_cookie", None
    )
    if not value:
        value = secrets.token_urlsafe(COOKIE_BYTES)
        request.state.csrf_new_cookie = value
    return _sign(settings, value)


def set_cookie_if_new(request: Request, response, settings: Settings) -> None:
    value = getattr(request.state, "csrf_new_cookie", None)
    if value:
        response.set_cookie(
            cookie_name(settings),
            value,
            max_age=COOKIE_MAX_AGE_SECONDS,
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookies,
            path="/",
        )


async def verify(request: Request, settings: Settings) -> None:
    """Refuse a state-changing request whose token does not match the browser's cookie."""
    value = request.cookies.get(cookie_name(settings))
    submitted = request.headers.get(HEADER)
    if submitted is None:
        form = await request.form()
        field = form.get(FORM_FIELD)
        submitted = field if isinstance(field, str) else None
    if not value or not submitted or not hmac.compare_digest(_sign(settings, value), submitted):
        raise CsrfFailed(
            N_(
                "This form has expired or was sent from another site. "
                "Reload the page and try again."
            )
        )
