"""Runs the retention job inside the server, every `retention_interval_seconds`."""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import suppress

from sqlalchemy.orm import Session, sessionmaker

from smartprotect.clock import Clock
from smartprotect.mail.links import Links
from smartprotect.privacy.keys.master import Keyring
from smartprotect.privacy.retention.job import Stopped, run_retention

# Soon after start, so that an instance restarted more often than the interval still runs it.
FIRST_RUN_DELAY_SECONDS = 30.0

log = logging.getLogger(__name__)


class RetentionScheduler:
    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        clock: Clock,
        keyring: Keyring,
        links: Links,
        interval_seconds: float,
    ) -> None:
        self._factory = session_factory
        self._clock = clock
        self._keyring = keyring
        self._links = links
        self._interval = interval_seconds
        self._task: asyncio.Task | None = None
        # A run works in a thread, which cancelling the task cannot stop: this can.
        self._stop = threading.Event()
        self.runs = 0

    async def start(self) -> None:
        if self._interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        await asyncio.sleep(min(FIRST_RUN_DELAY_SECONDS, self._interval))
        while True:
            try:
                # In a thread: each chunk waits for the database, which the loop must not.
                result = await asyncio.to_thread(
                    run_retention, session_factory=self._factory, clock=self._clock,
                    keyring=self._keyring, links=self._links, stop=self._stop,
                )  # fmt: skip
            except Stopped:
                return
            except Exception:
                log.exception("the retention run failed; the next one finishes its work")
            else:
                self.runs += 1
                if result is None:
                    log.info("retention: another instance is running it")
                else:
                    log.info("retention: %s", result.by_category())
            await asyncio.sleep(self._interval)
