"""Fixes from gpsd, the GPS daemon, over its JSON protocol (localhost:2947 by default)."""

from __future__ import annotations

import contextlib
import json
import math
import socket
import time
from datetime import UTC, datetime

from smartprotect.agent.providers import Fix

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 2947
# How long to wait for a usable fix before reporting none.
FIX_TIMEOUT_SECONDS = 10.0
# Without an error estimate from the receiver, say so with a cautious figure.
UNKNOWN_ACCURACY_M = 50.0
WATCH = b'?WATCH={"enable":true,"json":true};\n'


def accuracy_of(report: dict) -> float:
    """Horizontal error in metres: gpsd's eph, else from epx/epy, else a cautious default."""
    if isinstance(report.get("eph"), int | float):
        return float(report["eph"])
    epx, epy = report.get("epx"), report.get("epy")
    if isinstance(epx, int | float) and isinstance(epy, int | float):
        return math.hypot(epx, epy)
    return UNKNOWN_ACCURACY_M


class GpsdProvider:
    METHOD = "gps"

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        timeout: float = FIX_TIMEOUT_SECONDS,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout

    def current(self) -> Fix | None:
        """The first 2D/3D fix gpsd reports, or None if there is none in time (or no gpsd)."""
        deadline = time.monotonic() + self.timeout
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
                sock.sendall(WATCH)
                buffer = b""
                while time.monotonic() < deadline:
                    sock.settimeout(max(deadline - time.monotonic(), 0.01))
                    chunk = sock.recv(4096)
                    if not chunk:
                        return None
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        fix = self._parse(line)
                        if fix is not None:
                            return fix
        except OSError:
            return None
        return None

    def _parse(self, line: bytes) -> Fix | None:
        try:
            report = json.loads(line)
        except ValueError:
            return None
        if report.get("class") != "TPV" or report.get("mode", 0) < 2:
            return None
        if not isinstance(report.get("lat"), int | float) or not isinstance(
            report.get("lon"), int | float
        ):
            return None
        fixed_at = datetime.now(UTC)
        if isinstance(report.get("time"), str):
            with contextlib.suppress(ValueError):
                fixed_at = datetime.fromisoformat(report["time"].replace("Z", "+00:00"))
        return Fix(
            float(report["lat"]), float(report["lon"]), accuracy_of(report), self.METHOD, fixed_at
        )
