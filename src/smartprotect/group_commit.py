"""Group commit: many requests' writes stored in one transaction.

Every write is durable before it is answered, but committing each on its own would spend one
transaction (and, on SQLite, one turn of the single write lock) per request. Instead the
items that arrive while a batch is being written wait together and are written as the next
batch, in one transaction: under light load a batch is a single item and nothing waits;
under heavy load batches grow and each commit is shared. What a batch does is its writer's
`_stage` (device check-ins: `devices.group_commit`; FMD phones' uploads and polls:
`fmd.group_commit`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from smartprotect.db import KEYRING, NO_WAIT, DatabaseGate, once_more_if_lost
from smartprotect.privacy.keys.master import Keyring

# Bounded so one transaction stays short and its queries' parameter lists small: on SQLite a
# batch holds the event loop for its duration (~100 us an item, so under 15 ms).
MAX_BATCH = 128
# SQLite has one write lock; PostgreSQL can commit one batch while taking the next.
POSTGRES_WRITERS = 2

log = logging.getLogger(__name__)


class GroupCommitWriter:
    """Takes items from requests and answers each once its batch has committed.

    On PostgreSQL it writes through `async_engine`; on SQLite (`async_engine` None) through
    `session_factory`, holding the database gate. A subclass says what a batch does
    (`_stage`: one outcome per item, or an exception for an item it refuses) and, if
    anything, what follows once that is stored (`_follow_up`)."""

    # Set by a subclass whose `_stage` writes with one statement on PostgreSQL, its reads
    # needing no transaction around them: the batch then runs in autocommit mode, that
    # statement a transaction of its own, which spares the BEGIN and COMMIT round trips
    # (a tenth of the server's time a check-in, measured).
    ONE_STATEMENT_ON_POSTGRES = False

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        gate: DatabaseGate,
        keyring: Keyring,
        after_commit: Callable[[Session], None],
        async_engine: AsyncEngine | None,
    ) -> None:
        self._factory = session_factory
        self._gate = gate
        self._keyring = keyring
        self._after_commit = after_commit
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._writers: set[asyncio.Task] = set()
        self._async_engine = async_engine
        self._max_writers = 1 if async_engine is None else POSTGRES_WRITERS

    def _stage(self, session: Session, items: list[Any]) -> list[Any]:
        raise NotImplementedError

    def _follow_up(self, session: Session, outcomes: list[Any]) -> None:
        """What follows once the batch is stored: on PostgreSQL in a transaction after the
        batch's (on SQLite, in the batch's own)."""

    def _batch_failed(self) -> None:
        """Called whenever a transaction of the writer's failed (before it is tried again, or
        its items are written one by one): what it learned may not hold."""

    async def submit(self, item: Any) -> Any:
        """Store one item; returns its outcome when it is committed (or refused)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((item, future))
        self._writers = {w for w in self._writers if not w.done() and w.get_loop() is loop}
        if len(self._writers) < self._max_writers:
            self._writers.add(loop.create_task(self._write_pending(), name="group-commit"))
        return await future

    async def _write_pending(self) -> None:
        while self._pending:
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
            try:
                outcomes = await self._write([item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    _settle(future, exception=exc)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                _settle(future, result=outcome)

    async def _write(self, items: list[Any]) -> list[Any]:
        try:
            return await self._attempt(items)
        except Exception:
            if len(items) == 1:
                raise
        # One bad item must not fail the others: write each on its own instead.
        log.warning("a batch of %d items failed; writing them one by one", len(items))
        outcomes: list[Any] = []
        for item in items:
            try:
                outcomes.extend(await self._attempt([item]))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    async def _attempt(self, items: list[Any]) -> list[Any]:
        async def transaction() -> list[Any]:
            try:
                return await self._transaction(items)
            except Exception:
                self._batch_failed()
                raise

        return await once_more_if_lost(transaction)

    async def _transaction(self, items: list[Any]) -> list[Any]:
        # The batch runs on the event loop, not in a worker thread: that thread and the loop
        # would take turns at the interpreter lock many times per batch, which cost more
        # than the work itself (a third of the throughput, measured).
        if self._async_engine is not None:
            # PostgreSQL: SQLAlchemy runs the same code in a greenlet, and every wait for the
            # database gives the event loop back.
            async with AsyncSession(
                self._async_engine, expire_on_commit=False, info={KEYRING: self._keyring}
            ) as session:
                return await session.run_sync(self._store, items)
        # SQLite: only taking the write lock can wait (for another process), so that is done
        # in a thread; once it is held nothing waits, and the rest runs right here.
        async with self._gate:
            return await self._locked_transaction(items)

    async def _locked_transaction(self, items: list[Any]) -> list[Any]:
        session = self._factory()
        try:
            try:
                # Usually the write lock is free (this process holds the gate): taken right
                # here. A trip to a thread costs a turn of the event loop, milliseconds
                # under load; it is made only to wait for another process's transaction.
                session.connection(execution_options={NO_WAIT: True})
            except OperationalError:
                _discard(session)
                session = self._factory()
                await run_in_threadpool(session.connection)
            outcomes = self._stage(session, items)
            self._follow_up(session, outcomes)
            # Committing writes the batch's pages to the WAL, and now and then checkpoints it:
            # file work that SQLite does without the interpreter lock, so in a thread the
            # event loop goes on reading requests (the next batch) meanwhile.
            await run_in_threadpool(session.commit)
        except BaseException:
            _discard(session)
            raise
        self._finish(session)
        return outcomes

    def _store(self, session: Session, items: list[Any]) -> list[Any]:
        """The batch's transaction (in autocommit mode, its one statement), then its
        follow-ups' own, committed; then the wake-ups they call for."""
        try:
            if self.ONE_STATEMENT_ON_POSTGRES:
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            outcomes = self._stage(session, items)
            session.commit()
            # The connection went back to its pool (in its transaction mode again): what
            # follows, if anything, begins a transaction of its own. Should that fail, the
            # items are written again one by one (`_write`), which stores nothing twice:
            # the batch's writes are idempotent (a fix is kept once per device and time).
            self._follow_up(session, outcomes)
            session.commit()
        except BaseException:
            _discard(session)
            raise
        self._finish(session)
        return outcomes

    def _finish(self, session: Session) -> None:
        try:
            self._after_commit(session)
        except Exception:
            # Committed already: the items stand; a missed wake-up is caught up later.
            log.exception("after committing a batch")
        finally:
            session.close()


def _discard(session: Session) -> None:
    session.rollback()
    session.close()


def _settle(future: asyncio.Future, *, result: Any = None, exception: BaseException | None = None):
    if isinstance(result, BaseException):
        result, exception = None, result
    if future.done():
        return  # the client went away; its item is stored all the same
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except RuntimeError:
        pass  # its event loop has closed (a test client's, between requests)
