"""Replaying a recorded track (NMEA or GPX): for demonstrations and tests, reported as GPS
with the accuracy the recording gives (HDOP), each call the next point, then the last one."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from pathlib import Path

from smartprotect.agent.providers import Fix

# A receiver's typical error for HDOP 1 (user equivalent range error), in metres.
UERE_M = 5.0
UNKNOWN_ACCURACY_M = 50.0


def _nmea_degrees(value: str, hemisphere: str) -> float:
    degrees_width = 2 if hemisphere in "NS" else 3
    degrees = float(value[:degrees_width]) + float(value[degrees_width:]) / 60
    return -degrees if hemisphere in "SW" else degrees


def _checksum_ok(sentence: str) -> bool:
    if "*" not in sentence:
        return False
    body, _, given = sentence[1:].partition("*")
    computed = 0
    for char in body:
        computed ^= ord(char)
    return f"{computed:02X}" == given.strip().upper()[:2]


def parse_nmea(text: str) -> list[tuple[float, float, float]]:
    """Positions from $--GGA sentences with a fix: (lat, lon, accuracy in metres)."""
    points = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("$") or not _checksum_ok(line):
            continue
        fields = line.split("*")[0].split(",")
        if fields[0][3:] != "GGA" or len(fields) < 9 or fields[6] in ("", "0"):
            continue
        try:
            latitude = _nmea_degrees(fields[2], fields[3])
            longitude = _nmea_degrees(fields[4], fields[5])
            accuracy = float(fields[8]) * UERE_M if fields[8] else UNKNOWN_ACCURACY_M
        except (ValueError, IndexError):
            continue
        points.append((latitude, longitude, accuracy))
    return points


def parse_gpx(text: str) -> list[tuple[float, float, float]]:
    points = []
    for element in ElementTree.fromstring(text).iter():  # noqa: S314 - the owner's own file
        if element.tag.rsplit("}", 1)[-1] != "trkpt":
            continue
        hdop = next(
            (child.text for child in element if child.tag.rsplit("}", 1)[-1] == "hdop"), None
        )
        accuracy = float(hdop) * UERE_M if hdop else UNKNOWN_ACCURACY_M
        points.append((float(element.attrib["lat"]), float(element.attrib["lon"]), accuracy))
    return points


class ReplayProvider:
    METHOD = "gps"

    def __init__(self, path: Path) -> None:
        text = path.read_text(encoding="utf-8", errors="replace")
        self.points = parse_gpx(text) if text.lstrip().startswith("<") else parse_nmea(text)
        self.position = 0

    def current(self) -> Fix | None:
        if not self.points:
            return None
        latitude, longitude, accuracy = self.points[min(self.position, len(self.points) - 1)]
        self.position += 1
        return Fix(latitude, longitude, accuracy, self.METHOD, datetime.now(UTC))
