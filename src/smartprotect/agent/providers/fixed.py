"""A location set by hand in the agent's configuration (a desktop that never moves)."""

from __future__ import annotations

from datetime import UTC, datetime

from smartprotect.agent.providers import Fix


class FixedLocation:
    # Reported as "manual": nobody measured it, the owner typed it.
    METHOD = "manual"

    def __init__(self, latitude: float, longitude: float, accuracy_m: float) -> None:
        self.latitude, self.longitude, self.accuracy_m = latitude, longitude, accuracy_m

    def current(self) -> Fix:
        return Fix(self.latitude, self.longitude, self.accuracy_m, self.METHOD, datetime.now(UTC))
