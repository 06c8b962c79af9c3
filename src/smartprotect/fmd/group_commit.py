"""Group commit of FMD phones' busiest calls (`smartprotect.group_commit`): location uploads
and command polls from many phones answered from one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session, sessionmaker

from smartprotect.clock import Clock
from smartprotect.db import DatabaseGate
from smartprotect.devices.known import KnownDevices
from smartprotect.fmd import service as fmd
from smartprotect.group_commit import GroupCommitWriter
from smartprotect.privacy.keys.master import Keyring


class PhoneCallWriter(GroupCommitWriter):
    """Takes uploads and polls from requests; answers each once its batch has committed."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        gate: DatabaseGate,
        keyring: Keyring,
        clock: Clock,
        after_commit: Callable[[Session], None],
        async_engine: AsyncEngine | None,
    ) -> None:
        super().__init__(session_factory=session_factory, gate=gate, keyring=keyring,
                         after_commit=after_commit, async_engine=async_engine)  # fmt: skip
        self._clock = clock
        self._known = KnownDevices()

    def _batch_failed(self) -> None:
        self._known.forget()

    def _stage(self, session: Session, items: list[fmd.PhoneCall]) -> list[Any]:
        return fmd.serve_many(session=session, clock=self._clock, calls=items, known=self._known)
