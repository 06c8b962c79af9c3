"""What the profile's forms and API take."""

from __future__ import annotations

import re
from datetime import date

from pydantic import field_validator

from smartprotect.accounts.schemas import NAME_MAX_LENGTH, REQUIRED, TextInput, _optional_name
from smartprotect.i18n import N_
from smartprotect.validation import invalid

OTHER_INFORMATION_MAX_LENGTH = 2000
AUTHORITY_MAX_LENGTH = 200
# Passport and identity card numbers: letters and digits, as printed (Kazakhstan: N1234567
# or nine digits), spaces and dashes ignored.
_DOCUMENT_NUMBER = re.compile(r"^[A-Z0-9]{5,20}$")
EARLIEST_ISSUE = date(1900, 1, 1)


class NamesUpdate(TextInput):
    last_name: str | None = None
    first_name: str | None = None
    patronymic: str | None = None

    _names = field_validator("last_name", "first_name", "patronymic")(_optional_name)


class PassportUpdate(TextInput):
    """Passport data as fields only: never a scan (Kazakhstan forbids collecting copies of
    identity documents)."""

    number: str
    authority: str
    issued_on: date

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        value = re.sub(r"[\s-]", "", value).upper()
        if not value:
            raise invalid("required", REQUIRED)
        if not _DOCUMENT_NUMBER.match(value):
            raise invalid("passport_number", N_("Enter the number as printed: 5 to 20 letters "
                                                "and digits."))  # fmt: skip
        return value

    @field_validator("authority")
    @classmethod
    def _authority(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise invalid("required", REQUIRED)
        if len(value) > AUTHORITY_MAX_LENGTH:
            raise invalid("authority_long", N_("Use at most 200 characters."))
        return value

    @field_validator("issued_on", mode="before")
    @classmethod
    def _issued_on_given(cls, value: object) -> object:
        if value in ("", None):
            raise invalid("required", REQUIRED)
        return value


class OtherInformation(TextInput):
    text: str

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise invalid("required", REQUIRED)
        if len(value) > OTHER_INFORMATION_MAX_LENGTH:
            raise invalid("other_long", N_("Use at most 2000 characters."))
        return value


__all__ = ["NAME_MAX_LENGTH", "NamesUpdate", "OtherInformation", "PassportUpdate"]
