"""Rendering pages in the reader's language with the context every template needs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from smartprotect import __version__
from smartprotect.config import Settings
from smartprotect.i18n import LANGUAGE_NAMES, LANGUAGES, translations
from smartprotect.web import csrf
from smartprotect.web.language import is_explicit, localized

TEMPLATES_DIR = Path(__file__).parent / "templates"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals.update(LANGUAGES=LANGUAGES, LANGUAGE_NAMES=LANGUAGE_NAMES)
    templates.env.globals["version"] = __version__
    return templates


def language(request: Request) -> str:
    return request.scope.get("state", {}).get("language", "en")


def page_context(request: Request, settings: Settings, user=None) -> dict[str, Any]:
    lang = language(request)
    catalog = translations(lang)
    path = request.url.path

    explicit = is_explicit(request.scope)

    def url(target: str) -> str:
        return localized(target, lang, explicit=explicit)

    def switch_url(target_lang: str) -> str:
        return f"/lang/{target_lang}?next={quote(path)}"

    return {
        "request": request,
        "lang": lang,
        "_": catalog.gettext,
        "ngettext": catalog.ngettext,
        "url": url,
        "switch_url": switch_url,
        "current_path": path,
        "csrf_token": csrf.token_for(request, settings),
        "csrf_field": csrf.FORM_FIELD,
        "user": user,
        "dev_mode": settings.is_development,
        "privacy_contact": settings.privacy_contact_email,
        "site_url": settings.base_url,
    }


def render(
    request: Request,
    name: str,
    *,
    settings: Settings,
    user=None,
    context: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """A page response, with the CSRF cookie set if this browser has none yet."""
    templates: Jinja2Templates = request.app.state.templates
    full = page_context(request, settings, user)
    full.update(context or {})
    response = templates.TemplateResponse(request, name, full, status_code=status_code)
    csrf.set_cookie_if_new(request, response, settings)
    response.headers["Cache-Control"] = "no-store"
    return response
