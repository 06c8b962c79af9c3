"""What every command needs: settings, an engine and a session factory, made on demand."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from smartprotect.clock import SystemClock
from smartprotect.config import Settings, get_settings
from smartprotect.db import make_engine, make_session_factory


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings)

    @cached_property
    def session_factory(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

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
