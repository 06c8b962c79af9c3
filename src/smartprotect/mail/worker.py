"""The in-server mail sender: wakes when a request queued mail, and polls as a fallback."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from smartprotect.clock import Clock
from smartprotect.config import Settings
from smartprotect.mail.service import deliver_pending

log = logging.getLogger(__name__)


class OutboxWorker:
    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: sessionmaker[Session],
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        """Ask for a delivery round now; callable from any thread."""
        if self._loop is not None and self._wakeup is not None:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    async def _round(self) -> None:
        # Not behind the SQLite gate: a round holds no transaction while it talks SMTP, and
        # a single worker thread cannot starve the pool.
        await run_in_threadpool(
            deliver_pending,
            session_factory=self._session_factory,
            settings=self._settings,
            clock=self._clock,
        )

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._settings.mail_poll_seconds)
            self._wakeup.clear()
            try:
                await self._round()
            except Exception:
                # A broken database must not kill the sender; the next round retries.
                log.exception("outbox delivery round failed")
