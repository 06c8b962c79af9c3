"""Domain errors. Services raise them; the API and the pages turn them into responses.

Messages are English gettext message ids, translated at the edge in the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping


class SmartProtectError(Exception):
    status_code = 400
    title = "Bad request"

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


class ValidationFailed(SmartProtectError):
    """Input that breaks a rule; errors are keyed by field name."""

    status_code = 422
    title = "Invalid input"

    def __init__(
        self, errors: Mapping[str, str], message: str = "Please correct the errors below."
    ) -> None:
        super().__init__(message)
        self.errors = dict(errors)


class PasswordIncorrect(ValidationFailed):
    """A signed-in user re-entered a wrong password (to change their address, erase their
    account, wipe a device). The failed attempt is recorded for the throttle, so this
    error's transaction is committed, not rolled back."""

    keeps_transaction = True


def rollback_unless_kept(session, exc: BaseException) -> None:
    """Roll back after an error, unless the error's writes must stand."""
    if not getattr(exc, "keeps_transaction", False):
        session.rollback()


class NotAuthenticated(SmartProtectError):
    status_code = 401
    title = "Not authenticated"


class PermissionDenied(SmartProtectError):
    status_code = 403
    title = "Forbidden"


class NotFound(SmartProtectError):
    status_code = 404
    title = "Not found"


class Conflict(SmartProtectError):
    status_code = 409
    title = "Conflict"


class TooManyAttempts(SmartProtectError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, message: str, *, retry_after_seconds: int, **params: object) -> None:
        super().__init__(message, **params)
        self.retry_after_seconds = retry_after_seconds


class ServiceUnavailable(SmartProtectError):
    status_code = 503
    title = "Service unavailable"
