"""Headers that make every response safer by default."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Everything is served from our own origin: no CDN, no inline script. Map tiles, if
# configured, are the one exception, for images only.
CONTENT_SECURITY_POLICY = (
    # 'wasm-unsafe-eval' lets the site's own scripts compile WebAssembly (the FMD password's
    # Argon2id, in the browser); it allows no eval of JavaScript.
    "default-src 'self'; img-src 'self' data:{tiles}; style-src 'self'; "
    "script-src 'self' 'wasm-unsafe-eval'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def content_security_policy(tile_url: str | None) -> str:
    origin = ""
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        host = parts.netloc.replace("a.", "*.", 1) if "{s}" in tile_url else parts.netloc
        origin = f" {parts.scheme}://{host}"
    return CONTENT_SECURITY_POLICY.format(tiles=origin)


HSTS_MAX_AGE_SECONDS = 63072000


def security_headers(*, https: bool, policy: str) -> list[tuple[str, str]]:
    """The headers every response carries unless it sets its own."""
    headers = [
        ("Content-Security-Policy", policy),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if https:
        headers.append(("Strict-Transport-Security", f"max-age={HSTS_MAX_AGE_SECONDS}"))
    return headers


def device_api_headers(*, https: bool) -> list[tuple[str, str]]:
    """The headers of a JSON answer to a device: never rendered by a browser, so the page
    policies (CSP, framing, referrer) have nothing to act on; it is personal, so not cached."""
    headers = [("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")]
    if https:
        headers.append(("Strict-Transport-Security", f"max-age={HSTS_MAX_AGE_SECONDS}"))
    return headers


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, headers: list[tuple[str, str]]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
