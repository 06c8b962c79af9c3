"""Exponential backoff with jitter, so a fleet does not reconnect in lock-step."""

from __future__ import annotations

import random

from smartprotect.agent.constants import (
    BASE_RECONNECT_DELAY_SECONDS,
    JITTER_FACTOR,
    MAX_RECONNECT_DELAY_SECONDS,
)


def reconnect_delay(attempt: int, *, rng: random.Random | None = None) -> float:
    """Seconds to wait before the given (0-based) retry."""
    delay = min(BASE_RECONNECT_DELAY_SECONDS * (2 ** min(attempt, 16)), MAX_RECONNECT_DELAY_SECONDS)
    jitter = delay * JITTER_FACTOR * ((rng or random).random() - 0.5)
    return max(delay + jitter, 0.0)
