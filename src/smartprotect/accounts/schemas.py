"""Input and output shapes of accounts, shared by the API and the pages."""

from __future__ import annotations

import uuid
from datetime import datetime

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, field_validator

from smartprotect.i18n import LANGUAGES, N_
from smartprotect.validation import invalid, text_field

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256
NAME_MAX_LENGTH = 100
# Smart Protect is in Kazakhstan: a number written without a country code is read as local.
DEFAULT_PHONE_REGION = "KZ"


REQUIRED = N_("This field is required.")


def normalise_email(value: str) -> str:
    if not value.strip():
        raise invalid("required", REQUIRED)
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise invalid("email", N_("Enter a valid email address.")) from None
    return result.normalized.lower()


def normalise_phone(value: str) -> str:
    if not value.strip():
        raise invalid("required", REQUIRED)
    try:
        number = phonenumbers.parse(value.strip(), DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise invalid("phone", N_("Enter a valid phone number, e.g. +7 701 234 5678.")) from None
    if not phonenumbers.is_valid_number(number):
        raise invalid("phone", N_("Enter a valid phone number, e.g. +7 701 234 5678."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_password(value: str) -> str:
    if not value:
        raise invalid("required", REQUIRED)
    if len(value) < PASSWORD_MIN_LENGTH:
        raise invalid("password_short", N_("Use at least 10 characters."))
    if len(value) > PASSWORD_MAX_LENGTH:
        raise invalid("password_long", N_("Use at most 256 characters."))
    return value


def _optional_name(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    if len(value) > NAME_MAX_LENGTH:
        raise invalid("name_long", N_("Use at most 100 characters."))
    return value or None


class TextInput(BaseModel):
    """Every string field is checked for control characters before its own rules run."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: object) -> object:
        return text_field(value) if isinstance(value, str) else value


class UserCreate(TextInput):
    """What a person gives to register (clause 2.3.1, 2.3.3, 2.3.5)."""

    model_config = ConfigDict(str_strip_whitespace=False)

    email: str
    phone: str
    password: str
    last_name: str | None = None
    first_name: str | None = None
    patronymic: str | None = None
    language: str = "en"

    _email = field_validator("email")(normalise_email)
    _phone = field_validator("phone")(normalise_phone)
    _password = field_validator("password")(check_password)
    _names = field_validator("last_name", "first_name", "patronymic")(_optional_name)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise invalid("language", N_("Choose one of the supported languages."))
        return value


class RegistrationConsents(TextInput):
    """The choices made on the registration form."""

    policy_document_id: uuid.UUID
    accept_policy: bool = False
    # Clause 3.1: required.
    consent_processing: bool = False
    # Clause 3.2: optional, off unless the person turns them on.
    marketing_email: bool = False
    marketing_sms: bool = False


class RegistrationRequest(UserCreate, RegistrationConsents):
    """Registration through the API: the account and the consents in one body."""


class PasswordResetRequest(TextInput):
    email: str

    _email = field_validator("email")(normalise_email)


class NewPassword(TextInput):
    password: str
    password_confirm: str

    _password = field_validator("password")(check_password)


class LoginRequest(TextInput):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    email_verified: bool = Field(validation_alias="is_verified")
    phone: str
    last_name: str | None
    first_name: str | None
    patronymic: str | None
    language: str
    created_at: datetime


class ApiTokenCreate(TextInput):
    name: str = Field(min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise invalid("token_name", N_("Give the token a name."))
        return value


class ApiTokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenRead):
    token: str = Field(description="The secret. It is shown only once.")
