"""Waking an FMD phone through its UnifiedPush endpoint when a command waits for it.

The wake-up carries no data (the phone then asks for its command), exactly as FMD servers
send it, so any UnifiedPush distributor the app uses delivers it.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session

from smartprotect import __version__

log = logging.getLogger(__name__)

# Set on a session whose transaction put a command in an FMD slot: the push URLs to wake.
WAKE = "smartprotect.fmd_wake"
BODY = b'{\n\t\t"message": "fmd app wakeup",\n\t\t"priority": 5\n\t}'
TIMEOUT_SECONDS = 10.0


def wake_after_commit(session: Session, push_url: str | None) -> None:
    """Wake the phone once this transaction has committed (if it registered an endpoint)."""
    if push_url:
        session.info.setdefault(WAKE, []).append(push_url)


def wake_queued(session: Session, *, allow_private: bool = False) -> None:
    """Send the wake-ups a committed transaction queued, each in a thread of its own: a slow
    push service must not hold the request."""
    for url in session.info.pop(WAKE, []):
        threading.Thread(target=wake, args=(url,), kwargs={"allow_private": allow_private},
                         name="fmd-push", daemon=True).start()  # fmt: skip


def _public(host: str) -> bool:
    """Whether every address the host name stands for is on the public internet: a phone
    must not make the server post into its own network."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a).is_global for a in addresses)


def wake(url: str, *, allow_private: bool = False) -> bool:
    """POST the wake-up (a Gotify-style `/UP?` endpoint is posted at its `/message?`)."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        return False
    if not allow_private and not _public(parsed.hostname):
        log.warning("an FMD push endpoint outside the public internet was not called")
        return False
    try:
        response = httpx.post(
            url.replace("/UP?", "/message?"),
            content=BODY,
            headers={"Content-Encoding": "aes128gcm", "TTL": "86400", "Urgency": "high",
                     "User-Agent": f"smartprotect/{__version__}"},
            timeout=TIMEOUT_SECONDS,
            follow_redirects=False,
        )  # fmt: skip
    except httpx.HTTPError as exc:
        # Not the URL: it names the phone's push account.
        log.warning("an FMD wake-up was not delivered: %s", type(exc).__name__)
        return False
    return response.is_success
