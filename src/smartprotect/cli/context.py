"""What every command needs: settings, an engine and a session factory, made on demand."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from smartprotect.clock import SystemClock
from smartprotect.config import Settings, get_settings
from smartprotect.db import make_engine, make_session_factory
from smartprotect.privacy.keys.master import Keyring


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        # The master key is loaded only when a command opens personal data.
        return make_session_factory(self.engine, keyring=lambda: self.keyring)

    @cached_property
    def keyring(self) -> Keyring:
        from smartprotect.privacy.keys.master import keyring_from_settings

        return keyring_from_settings(self.settings)

    @cached_property
    def clock(self) -> SystemClock:
        return SystemClock()

    def require_current_schema(self) -> None:
        """Stop with a clear message when the database has not been migrated."""
        import click

        from smartprotect import migrations

        if not migrations.is_up_to_date(self.engine):
            raise click.ClickException(
                "The database schema is not up to date. Run `smartprotect db upgrade` first."
            )


def runtime() -> Runtime:
    return Runtime(settings=get_settings())
