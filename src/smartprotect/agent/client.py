"""Talking to the server: enrollment and check-in over HTTPS (JSON)."""

from __future__ import annotations

import httpx

from smartprotect import __version__
from smartprotect.agent.constants import HTTP_TIMEOUT_SECONDS


class ServerRefused(RuntimeError):
    """The server answered with an error that retrying will not fix."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


def _raise_for_problem(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        detail = body.get("detail") or body
        errors = body.get("errors")
    except ValueError:
        detail, errors = response.text[:200], None
    message = f"{response.status_code}: {detail}" + (f" {errors}" if errors else "")
    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
        raise ServerRefused(message, status_code=response.status_code)
    raise httpx.HTTPStatusError(message, request=response.request, response=response)


def enroll(*, server: str, code: str, platform: str, allowed: list[str]) -> dict:
    response = httpx.post(
        f"{server.rstrip('/')}/api/v1/agent/enroll",
        json={"code": code, "platform": platform, "agent_version": __version__,
              "allowed": allowed},
        timeout=HTTP_TIMEOUT_SECONDS,
    )  # fmt: skip
    _raise_for_problem(response)
    return response.json()


def check_in(*, server: str, credential: str, report: dict) -> dict:
    response = httpx.post(
        f"{server.rstrip('/')}/api/v1/agent/check-in",
        json=report,
        headers={"Authorization": f"Bearer {credential}"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    _raise_for_problem(response)
    return response.json()


def report_command(*, server: str, credential: str, command_id: str, state: str, result) -> None:
    response = httpx.post(
        f"{server.rstrip('/')}/api/v1/agent/commands/{command_id}/state",
        json={"state": state, "result": result},
        headers={"Authorization": f"Bearer {credential}"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    _raise_for_problem(response)


def poll(*, server: str, credential: str, wait: float) -> dict:
    """Wait on the server for commands (long-poll); returns at once when one is queued."""
    response = httpx.get(
        f"{server.rstrip('/')}/api/v1/agent/commands",
        params={"wait": wait},
        headers={"Authorization": f"Bearer {credential}"},
        timeout=wait + HTTP_TIMEOUT_SECONDS,
    )
    _raise_for_problem(response)
    return response.json()
