"""Settings come from SMARTPROTECT_* variables; production refuses default secrets."""

from __future__ import annotations

import pytest

from smartprotect.config import (
    DEFAULT_SECRET_KEY,
    Environment,
    InsecureSettings,
    MailBackend,
    Settings,
)


def test_settings_are_read_from_prefixed_environment_variables(monkeypatch):
    monkeypatch.setenv("SMARTPROTECT_ENV", "development")
    monkeypatch.setenv("SMARTPROTECT_DATABASE_URL", "sqlite:///./var/x.db")
    monkeypatch.setenv("SMARTPROTECT_SMTP_PORT", "2525")
    settings = Settings()
    assert settings.env is Environment.DEVELOPMENT
    assert settings.database_url == "sqlite:///./var/x.db"
    assert settings.smtp_port == 2525


def test_production_is_the_default_and_refuses_the_default_secret(monkeypatch):
    monkeypatch.delenv("SMARTPROTECT_ENV", raising=False)
    monkeypatch.delenv("SMARTPROTECT_SECRET_KEY", raising=False)
    settings = Settings()
    assert settings.env is Environment.PRODUCTION
    assert settings.secret_key.get_secret_value() == DEFAULT_SECRET_KEY
    with pytest.raises(InsecureSettings):
        settings.check_safe_to_serve()
    with pytest.raises(InsecureSettings):
        Settings(secret_key="too-short").check_safe_to_serve()
    Settings(secret_key="x" * 48, base_url="https://smprotect.com").check_safe_to_serve()


def test_production_refuses_plain_http_links_and_console_mail():
    safe = {"secret_key": "x" * 48, "base_url": "https://smprotect.com"}
    with pytest.raises(InsecureSettings, match="BASE_URL"):
        Settings(**{**safe, "base_url": "http://127.0.0.1:8000"}).check_safe_to_serve()
    with pytest.raises(InsecureSettings, match="console"):
        Settings(**safe, mail_backend="console").check_safe_to_serve()


def test_development_allows_the_default_secret_and_prints_mail():
    settings = Settings(env="development")
    settings.check_safe_to_serve()
    assert settings.mail_backend is MailBackend.CONSOLE
    assert not settings.secure_cookies
    assert Settings(env="production", secret_key="x" * 48).mail_backend is MailBackend.SMTP


def test_secrets_do_not_appear_in_representations():
    settings = Settings(secret_key="s3cr3t-" * 8, smtp_password="hunter2hunter2")
    assert "s3cr3t" not in repr(settings) and "hunter2" not in repr(settings)


def test_sqlite_path():
    assert str(Settings(database_url="sqlite:///./var/a.db").sqlite_path()) == "var/a.db"
    assert Settings(database_url="postgresql://x/y").sqlite_path() is None
