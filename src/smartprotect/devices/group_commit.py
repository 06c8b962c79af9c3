"""Group commit of device check-ins (`smartprotect.group_commit`): many devices' check-ins
stored in one transaction, with a fixed number of queries however many there are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session, sessionmaker

from smartprotect.clock import Clock
from smartprotect.commands import service as commands
from smartprotect.db import DatabaseGate
from smartprotect.devices import service as devices
from smartprotect.devices.known import KnownDevices
from smartprotect.devices.models import Device
from smartprotect.group_commit import MAX_BATCH, POSTGRES_WRITERS, GroupCommitWriter
from smartprotect.mail.links import Links
from smartprotect.privacy.keys.master import Keyring

__all__ = ["MAX_BATCH", "POSTGRES_WRITERS", "CheckInWriter"]


class CheckInWriter(GroupCommitWriter):
    """Takes check-ins from requests and answers each once its batch has committed."""

    # `devices.check_in_many` writes a batch with one statement on PostgreSQL.
    ONE_STATEMENT_ON_POSTGRES = True

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        gate: DatabaseGate,
        keyring: Keyring,
        command_key: Ed25519PrivateKey,
        clock: Clock,
        links: Links,
        after_commit: Callable[[Session], None],
        async_engine: AsyncEngine | None,
    ) -> None:
        super().__init__(session_factory=session_factory, gate=gate, keyring=keyring,
                         after_commit=after_commit, async_engine=async_engine)  # fmt: skip
        self._known = KnownDevices()
        self._command_key = command_key
        self._clock = clock
        self._links = links

    async def submit(self, item: devices.Report) -> devices.CheckInOutcome:
        """Store one check-in; returns when it is committed (or refused)."""
        return await super().submit(item)

    def _batch_failed(self) -> None:
        # Whatever went wrong, the next batches learn everything afresh.
        self._known.forget()

    def _stage(self, session: Session, items: list[devices.Report]) -> list[Any]:
        return devices.check_in_many(
            session=session, keyring=self._keyring, reports=items, clock=self._clock,
            known=self._known,
        )  # fmt: skip

    def _follow_up(self, session: Session, outcomes: list[devices.CheckInOutcome]) -> None:
        """Tell the owners of lost devices that are back, and hand devices their queued
        commands."""
        following = [o for o in outcomes if o.error is None and o.needs_follow_up]
        if not following:
            return
        # The devices locked first, in id order: two batches following up the same device
        # take turns (the second finds the owner told already, and the commands handed
        # out), and cannot deadlock with each other.
        locked = {
            device.id: device
            for device in session.scalars(
                select(Device)
                .where(Device.id.in_({o.device_id for o in following}))
                .order_by(Device.id)
                .with_for_update(key_share=True)
            )
        }
        for outcome in following:
            device = locked[outcome.device_id]
            devices.notify_if_found(
                session=session, device=device, clock=self._clock, links=self._links
            )
            outcome.commands.extend(
                commands.deliver(
                    session=session, keyring=self._keyring, device=device,
                    key=self._command_key, clock=self._clock, links=self._links,
                )
            )  # fmt: skip
