"""What the check-in path knows of enrolled devices from one batch to the next.

A check-in batch needs, for each credential: whose device it is, whether it is revoked, what
the owner permitted and still consents to, whether it is lost, and the owner's data key.
Looking all that up again for every batch (three queries and a key unwrap per owner) was a
third of a check-in's time on the database side. So the answers are kept between batches,
but only while nothing they depend on has changed:

- the database keeps one counter, `access_generation`, which triggers raise whenever a
  device's credential, revocation, capabilities, owner or lost state changes, a device is
  deleted, a consent event is recorded, or a data key is changed or destroyed (migration
  `ed1bad597c5f`). They fire for every INSERT, UPDATE and DELETE, whoever makes it: the
  site, a CLI job, another server process, a statement typed by hand. They do not fire for
  TRUNCATE, for a restore, or with triggers disabled (PostgreSQL's replica role): restart
  the servers after such maintenance;
- every batch reads the counter first, in its own transaction, and uses what is kept only
  if the counter is the one it was learned under (and not older than `MAX_AGE`). Otherwise
  everything is learned again.

So a revoked credential, a withdrawn consent or an erased owner is refused by the first
batch that begins after the change commits, exactly as without the cache. The owners' data
keys stay unwrapped in the server's memory for `MAX_AGE` at most.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# Enough for every device one server worker sees in a check-in interval at the benchmarked
# rate; past it, what is kept is dropped and learned again (about 1 KiB a device).
MAX_KNOWN = 50_000
# However still the counter stands, what is kept (unwrapped data keys among it) is learned
# afresh this often.
MAX_AGE_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Known:
    """One unrevoked device, as a check-in batch needs it."""

    id: uuid.UUID
    user_id: uuid.UUID
    lost: bool
    # Lost and its owner not yet told it is back.
    owner_to_be_told: bool
    # Enrolled with the capability and, at the counter's value, consented to.
    may_locate: bool
    may_report_accounts: bool


class Learned:
    """What one generation of the counter has taught: devices by credential hash, the
    owners' data keys, and (for FMD phones' uploads) whether a device may locate. A batch
    reads and adds to the one its counter value gives it."""

    __slots__ = ("ciphers", "devices", "may_locate")

    def __init__(self) -> None:
        self.devices: dict[str, Known] = {}
        self.ciphers: dict[uuid.UUID, AESGCM] = {}
        self.may_locate: dict[uuid.UUID, bool] = {}


class KnownDevices:
    """Kept by one server process for one kind of batch (check-ins, FMD phones' calls)."""

    def __init__(
        self, *, limit: int = MAX_KNOWN, max_age: float = MAX_AGE_SECONDS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._generation: int | None = None
        self._learned = Learned()
        self._since = 0.0
        self._limit = limit
        self._max_age = max_age
        self._now = now

    def at(self, generation: int | None) -> Learned:
        """What is known at this value of the counter (nothing, if it has moved on)."""
        if generation is None:
            return Learned()  # no counter: nothing can be trusted past this batch
        now = self._now()
        if (
            generation == self._generation
            and len(self._learned.devices) < self._limit
            and now - self._since < self._max_age
        ):
            return self._learned
        # Any other value starts afresh, a lower one too: a batch that read the counter
        # before another saw it rise (two writers on PostgreSQL) only costs a relearning,
        # and a counter set back (a restored database) must not meet old answers again.
        self._generation, self._learned, self._since = generation, Learned(), now
        return self._learned

    def forget(self) -> None:
        self._generation, self._learned = None, Learned()
