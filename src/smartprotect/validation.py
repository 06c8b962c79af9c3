"""Turning pydantic validation errors into per-field message ids we can translate."""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from smartprotect.i18n import N_

# Our own validators raise PydanticCustomError with a code from here; the message is a
# gettext message id shown to the user.
CUSTOM_PREFIX = "sp_"

_BUILTIN_MESSAGES = {
    "missing": N_("This field is required."),
    "string_too_short": N_("This field is required."),
    "string_too_long": N_("This is too long."),
    "string_type": N_("Enter text."),
    "bool_parsing": N_("Choose yes or no."),
    "bool_type": N_("Choose yes or no."),
    "value_error": N_("This value is not valid."),
    "uuid_parsing": N_("This identifier is not valid."),
}
_FALLBACK = N_("This value is not valid.")


_CONTROL = {chr(code) for code in range(32)} - {"\t", "\n", "\r"} | {"\x7f"}


def has_control_characters(value: str) -> bool:
    return any(char in _CONTROL for char in value)


def text_field(value: str) -> str:
    """A text input: refuses control characters (NUL breaks PostgreSQL, others mislead)."""
    if has_control_characters(value):
        raise invalid("control", N_("This contains characters that are not allowed."))
    return value


def invalid(code: str, message: str) -> PydanticCustomError:
    """An error for a field validator to raise, carrying a translatable message id."""
    return PydanticCustomError(CUSTOM_PREFIX + code, message)


# Where FastAPI says an error was found, not which field it concerns.
_REQUEST_PARTS = ("body", "query", "path")


def _first_per_field(errors) -> dict[str, str]:
    found: dict[str, str] = {}
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in _REQUEST_PARTS]
        field = ".".join(loc) or "__all__"
        if field in found:
            continue
        kind = str(error.get("type", ""))
        found[field] = (
            error["msg"]
            if kind.startswith(CUSTOM_PREFIX)
            else _BUILTIN_MESSAGES.get(kind, _FALLBACK)
        )
    return found


def field_errors(exc: ValidationError) -> dict[str, str]:
    """The first error of each field, as a message id."""
    return _first_per_field(exc.errors())


def field_errors_from_request(exc) -> dict[str, str]:
    """Per-field message ids of FastAPI's RequestValidationError (body/query/path)."""
    return _first_per_field(exc.errors())
