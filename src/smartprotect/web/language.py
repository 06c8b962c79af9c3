"""Choosing the page language: URL prefix, then the switcher's cookie, then Accept-Language."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from smartprotect.i18n import DEFAULT_LANGUAGE, LANGUAGES, negotiate

LANGUAGE_COOKIE = "sp_lang"


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                cookie_name, _, cookie_value = part.strip().partition("=")
                if cookie_name == name:
                    return cookie_value
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class LanguageMiddleware:
    """Strip a /ru or /en prefix from the path and record the chosen language in the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        language: str | None = None
        prefixed = False
        for candidate in LANGUAGES:
            prefix = f"/{candidate}"
            if path == prefix or path.startswith(prefix + "/"):
                language, prefixed = candidate, True
                path = path[len(prefix) :] or "/"
                break
        if language is None:
            cookie = _cookie(scope, LANGUAGE_COOKIE)
            language = cookie if cookie in LANGUAGES else None
        if language is None:
            language = negotiate(_header(scope, b"accept-language")) or DEFAULT_LANGUAGE
        scope = dict(scope)
        scope["path"] = path
        scope["raw_path"] = path.encode()
        state = dict(scope.get("state") or {})
        state["language"] = language
        state["language_prefixed"] = prefixed
        scope["state"] = state
        await self.app(scope, receive, send)


def localized(path: str, language: str, *, explicit: bool = False) -> str:
    """A site path in a language. English lives at the unprefixed paths too, but a reader who
    chose /en/ explicitly (or a link in a mail) keeps the prefix, so nothing else overrides it."""
    if language == DEFAULT_LANGUAGE and not explicit:
        return path
    return f"/{language}{path}" if path != "/" else f"/{language}/"


def is_explicit(scope) -> bool:
    return bool(scope.get("state", {}).get("language_prefixed"))
