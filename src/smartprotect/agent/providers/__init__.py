"""Where the device is: each provider returns a fix (or None), with an honest method and
accuracy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Fix:
    latitude: float
    longitude: float
    accuracy_m: float
    method: str
    fixed_at: datetime

    def as_json(self) -> dict:
        return {
            "latitude": self.latitude,
            "longitude": self.longitude,
            "accuracy_m": self.accuracy_m,
            "method": self.method,
            "fixed_at": self.fixed_at.isoformat(),
        }


class LocationProvider(Protocol):
    def current(self) -> Fix | None: ...
