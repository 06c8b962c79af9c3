"""Settings, read from the environment in this one place."""

from __future__ import annotations

import enum
from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A development convenience only: the server refuses to start with it elsewhere.
DEFAULT_SECRET_KEY = "insecure-development-secret-change-me"  # noqa: S105
MIN_SECRET_LENGTH = 32


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class MailBackend(enum.StrEnum):
    SMTP = "smtp"
    CONSOLE = "console"


class SmsBackend(enum.StrEnum):
    HTTP = "http"
    CONSOLE = "console"


class InsecureSettings(RuntimeError):
    """The settings are unsafe for the chosen environment."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMARTPROTECT_", extra="ignore")

    env: Environment = Environment.PRODUCTION
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    database_url: str = "sqlite:///./var/smartprotect.db"
    # Connections per process: enough for every worker thread (anyio's 40 by default) to
    # hold one, so requests never queue for a connection while threads sit idle.
    database_pool_size: int = 20
    database_max_overflow: int = 20
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    # Proxies whose X-Forwarded-For is believed (uvicorn's forwarded_allow_ips): the
    # sign-in throttle keys on the client address, so it must be the real one.
    forwarded_allow_ips: str = "127.0.0.1"

    mail_backend: MailBackend | None = None
    mail_from: str = "Smart Protect <no-reply@smprotect.com>"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # A private CA bundle for the mail server's certificate; the system's CAs otherwise.
    smtp_ca_file: str | None = None
    smtp_timeout_seconds: float = 10.0
    mail_poll_seconds: float = 5.0

    # Text messages (phone confirmation codes) go to an HTTP gateway as a JSON POST of
    # {"to", "text", "from"}; without a URL, phone numbers cannot be confirmed.
    sms_backend: SmsBackend | None = None
    sms_gateway_url: str | None = None
    sms_gateway_token: SecretStr | None = None
    sms_sender: str = "SmartProtect"
    sms_timeout_seconds: float = 10.0

    # The master key wrapping every subject's data key: base64 of 32 random bytes, given
    # directly or in a file. Development falls back to a key file it creates under var/.
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    audit_signing_key_file: Path | None = None
    # Map tiles for the dashboard, e.g. https://tile.example.org/{z}/{x}/{y}.png; without
    # one the map shows the points on a plain background (nothing is fetched elsewhere).
    map_tile_url: str | None = None
    map_attribution: str = ""
    # Signs every command sent to a device (Ed25519, PEM); development creates one.
    command_signing_key_file: Path | None = None
    # How often devices report: rarely to spare the battery, often once marked lost.
    check_in_seconds: int = 15 * 60
    lost_check_in_seconds: int = 60
    # How often the server runs the retention job (clause 2.4); 0 leaves it to the CLI.
    retention_interval_seconds: int = 3600
    # FMD phones name the push endpoint the server wakes them at; one in a private network
    # (a self-hosted distributor) is called only if this is on.
    fmd_push_to_private_addresses: bool = False
    # Open registration: phones may also register FMD accounts that belong to no Smart
    # Protect account, as on a plain FMD server (with a token set, only with that
    # registration token). Off, every FMD account is a device of the user whose enrollment
    # code it registered with. The operator answers for such accounts' data (kept as FMD's:
    # encrypted, for at most a year after the phone last signed in).
    fmd_open_registration: bool = False
    fmd_open_registration_token: SecretStr | None = None
    # Where users write about their data when the site offers no way (clause 7.1); such a
    # request is handled with `smartprotect rights request`.
    privacy_contact_email: str = "privacy@smprotect.com"
    var_dir: Path = Path("var")

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if self.mail_backend is None:
            self.mail_backend = MailBackend.CONSOLE if self.is_development else MailBackend.SMTP
        if self.sms_backend is None:
            self.sms_backend = SmsBackend.CONSOLE if self.is_development else SmsBackend.HTTP
        return self

    @property
    def is_development(self) -> bool:
        return self.env is Environment.DEVELOPMENT

    @property
    def secure_cookies(self) -> bool:
        return not self.is_development

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file of an SQLite URL, or None for other engines."""
        if not self.is_sqlite:
            return None
        raw = self.database_url.split("///", 1)[1] if "///" in self.database_url else ""
        return Path(raw) if raw and raw != ":memory:" else None

    def development_key_file(self, name: str) -> Path:
        return self.var_dir / name

    def check_safe_to_serve(self) -> None:
        """Refuse to serve outside development with secrets left at their defaults."""
        if self.is_development:
            return
        secret = self.secret_key.get_secret_value()
        if secret == DEFAULT_SECRET_KEY or len(secret) < MIN_SECRET_LENGTH:
            raise InsecureSettings(
                "SMARTPROTECT_SECRET_KEY is unset or shorter than 32 characters; "
                "set a random value (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`) or set SMARTPROTECT_ENV=development."
            )
        if not self.base_url.startswith("https://"):
            raise InsecureSettings(
                "SMARTPROTECT_BASE_URL must be the site's https:// address outside "
                "development: mailed links and secure cookies depend on it."
            )
        if self.mail_backend is MailBackend.CONSOLE:
            raise InsecureSettings(
                "SMARTPROTECT_MAIL_BACKEND=console would print one-time links into the "
                "server's output; use smtp outside development."
            )
        if self.sms_backend is SmsBackend.CONSOLE:
            raise InsecureSettings(
                "SMARTPROTECT_SMS_BACKEND=console would print confirmation codes into the "
                "server's output; use http outside development."
            )


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings()
