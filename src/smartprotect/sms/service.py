"""Text messages to phones, through an HTTP gateway.

Most SMS providers (and self-hosted gateways such as an Android phone running an SMS
gateway app) take a JSON POST; `SMS_GATEWAY_URL` names it and `SMS_GATEWAY_TOKEN` is sent
as a bearer token. Development prints messages instead. A message is sent only after the
transaction that decided it has committed, by the caller.
"""

from __future__ import annotations

import logging

import httpx

from smartprotect.config import Settings, SmsBackend
from smartprotect.errors import SmartProtectError
from smartprotect.i18n import N_

log = logging.getLogger(__name__)


class SmsUnavailable(SmartProtectError):
    """No gateway is configured, or it did not take the message."""

    status_code = 503
    title = "Text messages unavailable"


def available(settings: Settings) -> bool:
    """Whether this server can send text messages at all."""
    return settings.sms_backend is SmsBackend.CONSOLE or bool(settings.sms_gateway_url)


def send(*, settings: Settings, to: str, text: str) -> None:
    """Send one text message, or raise SmsUnavailable."""
    if settings.sms_backend is SmsBackend.CONSOLE:
        # Development only (refused elsewhere by the settings): the console stands in.
        print(f"{'-' * 72}\nSMS to {to}\n{text}\n{'-' * 72}", flush=True)
        return
    if not settings.sms_gateway_url:
        raise SmsUnavailable(N_("Text messages cannot be sent from this server."))
    headers = {}
    if settings.sms_gateway_token is not None:
        headers["Authorization"] = f"Bearer {settings.sms_gateway_token.get_secret_value()}"
    try:
        response = httpx.post(
            settings.sms_gateway_url,
            json={"to": to, "text": text, "from": settings.sms_sender},
            headers=headers,
            timeout=settings.sms_timeout_seconds,
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        # Neither the number nor the text is logged: both are personal or secret.
        log.warning("the SMS gateway did not take a message: %s", type(exc).__name__)
        raise SmsUnavailable(
            N_("The text message could not be sent. Please try again later.")
        ) from None
