"""Waking long-polling devices the moment a command is queued for them.

In one process an asyncio event per waiting device suffices. Several server processes
sharing PostgreSQL learn of each other's commands through LISTEN/NOTIFY: the NOTIFY is sent
in the transaction that queues the command, so it arrives exactly when the command is
committed, and every instance (the sender included) wakes its local waiters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

CHANNEL = "smartprotect_commands"
# Set on a session whose transaction queued a command, for the in-process path.
QUEUED_FLAG = "smartprotect.command_queued"
LISTEN_RETRY_SECONDS = 2.0
WOKEN_KEPT = 100_000

log = logging.getLogger(__name__)


def announce(*, session: Session, device_id: uuid.UUID) -> None:
    """Note, inside the issuing transaction, that a device has a new command."""
    session.info.setdefault(QUEUED_FLAG, set()).add(device_id)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:channel, :device)"),
            {"channel": CHANNEL, "device": str(device_id)},
        )


class Notifier:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[uuid.UUID, set[asyncio.Event]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None
        # Wake-ups are numbered, and each device's latest kept, so that a waiter can ask
        # whether its device was woken since it last looked in the database.
        self._count = 0
        self._woken: dict[uuid.UUID, int] = {}

    def mark(self) -> int:
        """A point in the sequence of wake-ups; take it before looking in the database."""
        return self._count

    def woken_since(self, device_id: uuid.UUID, mark: int) -> bool:
        return self._woken.get(device_id, -1) >= mark

    async def start(self, *, database_url: str | None) -> None:
        self._loop = asyncio.get_running_loop()
        if database_url and database_url.startswith("postgresql"):
            self._listener = asyncio.create_task(self._listen(database_url), name="pg-listen")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    def subscribe(self, device_id: uuid.UUID) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters[device_id].add(event)
        return event

    def unsubscribe(self, device_id: uuid.UUID, event: asyncio.Event) -> None:
        waiters = self._waiters.get(device_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[device_id]

    def _wake(self, device_id: uuid.UUID) -> None:
        if len(self._woken) >= WOKEN_KEPT:
            # Forgetting only makes a waiter that looked just before miss this one wake-up;
            # its device then gets the command on its next poll.
            self._woken.clear()
        self._woken[device_id] = self._count
        self._count += 1
        for event in self._waiters.get(device_id, ()):
            event.set()

    def publish(self, device_ids: set[uuid.UUID], *, via_database: bool) -> None:
        """After a commit: wake local waiters (PostgreSQL's NOTIFY does it when it is used)."""
        if via_database or self._loop is None:
            return
        for device_id in device_ids:
            self._loop.call_soon_threadsafe(self._wake, device_id)

    @property
    def connected_devices(self) -> int:
        return len(self._waiters)

    async def _listen(self, database_url: str) -> None:
        import psycopg

        conninfo = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    async for notice in connection.notifies():
                        with contextlib.suppress(ValueError):
                            self._wake(uuid.UUID(notice.payload))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("LISTEN connection lost; retrying", exc_info=True)
                await asyncio.sleep(LISTEN_RETRY_SECONDS)
