"""Reconnecting: exponential backoff with jitter, capped."""

from __future__ import annotations

import random

from smartprotect.agent.backoff import reconnect_delay
from smartprotect.agent.constants import (
    BASE_RECONNECT_DELAY_SECONDS,
    JITTER_FACTOR,
    MAX_RECONNECT_DELAY_SECONDS,
)


class Fixed(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_the_delay_doubles_up_to_its_cap():
    middle = Fixed(0.5)  # no jitter
    delays = [reconnect_delay(attempt, rng=middle) for attempt in range(10)]
    assert delays[:6] == [BASE_RECONNECT_DELAY_SECONDS * 2**n for n in range(6)]
    assert delays[6:] == [MAX_RECONNECT_DELAY_SECONDS] * 4
    assert reconnect_delay(10_000, rng=middle) == MAX_RECONNECT_DELAY_SECONDS


def test_jitter_spreads_a_fleet_around_each_delay():
    spread = JITTER_FACTOR / 2
    for attempt in (0, 3, 12):
        center = reconnect_delay(attempt, rng=Fixed(0.5))
        assert reconnect_delay(attempt, rng=Fixed(0.0)) == center * (1 - spread)
        assert reconnect_delay(attempt, rng=Fixed(0.999999)) < center * (1 + spread)
    fleet = {round(reconnect_delay(4), 3) for _ in range(200)}
    assert len(fleet) > 100  # not in lock-step
    assert all(80 * (1 - spread) <= delay <= 80 * (1 + spread) for delay in fleet)
