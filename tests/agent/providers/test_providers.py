"""Location providers: a real gpsd fed by gpsfake, a recorded gpsd stream, NMEA and GPX."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from smartprotect.agent.providers.gpsd import GpsdProvider, accuracy_of
from smartprotect.agent.providers.replay import ReplayProvider, parse_nmea
from tests.conftest import free_port

GPSFAKE = shutil.which("gpsfake") or "/usr/bin/gpsfake"


def _sentence(body: str) -> str:
    checksum = 0
    for char in body:
        checksum ^= ord(char)
    return f"${body}*{checksum:02X}"


# Almaty, 43°14.337'N 76°53.383'E, HDOP 0.9: a receiver's log.
NMEA = (
    "\n".join(
        _sentence(body)
        for body in (
            "GPGGA,120000.00,4314.33700,N,07653.38300,E,1,09,0.9,780.0,M,-30.0,M,,",
            "GPRMC,120000.00,A,4314.33700,N,07653.38300,E,0.0,0.0,261126,,,A",
            "GPGGA,120001.00,4314.33800,N,07653.38400,E,1,09,0.9,780.0,M,-30.0,M,,",
            "GPRMC,120001.00,A,4314.33800,N,07653.38400,E,0.0,0.0,261126,,,A",
        )
    )
    + "\n"
)


def test_nmea_positions_and_accuracy_from_hdop():
    points = parse_nmea(NMEA + "$GPGGA,broken*00\n")
    assert len(points) == 2
    latitude, longitude, accuracy = points[0]
    assert latitude == pytest.approx(43.238950, abs=1e-6)
    assert longitude == pytest.approx(76.889717, abs=1e-6)
    assert accuracy == pytest.approx(4.5)


def test_replaying_a_gpx_track(tmp_path):
    track = tmp_path / "track.gpx"
    track.write_text(
        '<?xml version="1.0"?><gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        '<trkpt lat="43.2389" lon="76.8897"><hdop>2</hdop></trkpt>'
        '<trkpt lat="43.2400" lon="76.8900"></trkpt></trkseg></trk></gpx>'
    )
    provider = ReplayProvider(track)
    first, second, third = provider.current(), provider.current(), provider.current()
    assert (first.latitude, first.accuracy_m, first.method) == (43.2389, 10.0, "gps")
    assert second.accuracy_m == 50.0 and third.latitude == second.latitude


def test_accuracy_is_reported_honestly():
    assert accuracy_of({"eph": 7.5}) == 7.5
    assert accuracy_of({"epx": 3, "epy": 4}) == 5
    assert accuracy_of({}) == 50.0


def _serve_once(port: int, lines: list[dict]) -> threading.Thread:
    """A recorded gpsd session served over a socket: what gpsd says after ?WATCH."""
    server = socket.create_server(("127.0.0.1", port))

    def run():
        connection, _ = server.accept()
        with connection:
            assert connection.recv(1024).startswith(b"?WATCH=")
            for line in lines:
                connection.sendall(json.dumps(line).encode() + b"\n")
                time.sleep(0.05)
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_gpsd_protocol_against_a_recorded_stream():
    port = free_port()
    thread = _serve_once(port, [
        {"class": "VERSION", "release": "3.22", "proto_major": 3, "proto_minor": 14},
        {"class": "DEVICES", "devices": []},
        {"class": "WATCH", "enable": True, "json": True},
        {"class": "TPV", "mode": 1},  # no fix yet
        {"class": "SKY", "satellites": []},
        {"class": "TPV", "mode": 3, "time": "2026-11-26T12:00:00.000Z", "lat": 43.23895,
         "lon": 76.88972, "eph": 6.2},
    ])  # fmt: skip
    fix = GpsdProvider("127.0.0.1", port, timeout=5).current()
    thread.join(timeout=5)
    assert (fix.latitude, fix.longitude, fix.accuracy_m, fix.method) == (
        43.23895,
        76.88972,
        6.2,
        "gps",
    )
    assert fix.fixed_at.isoformat() == "2026-11-26T12:00:00+00:00"


def test_no_gpsd_means_no_fix():
    assert GpsdProvider("127.0.0.1", free_port(), timeout=1).current() is None


def test_a_real_gpsd_fed_by_gpsfake(tmp_path):
    if not Path(GPSFAKE).exists():
        pytest.fail("gpsfake not found: `make test` installs Debian's gpsd and gpsd-clients")
    log = tmp_path / "almaty.nmea"
    log.write_text(NMEA * 20)
    port = free_port()
    fake = subprocess.Popen(
        [GPSFAKE, "-q", "-P", str(port), "-c", "0.2", "-1", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        fix = None
        deadline = time.monotonic() + 30
        while fix is None and time.monotonic() < deadline:
            fix = GpsdProvider("127.0.0.1", port, timeout=5).current()
        assert fix is not None, fake.stderr.read1() if fake.poll() is not None else "no fix"
        assert fix.latitude == pytest.approx(43.2389, abs=1e-3)
        assert fix.longitude == pytest.approx(76.8897, abs=1e-3)
        assert fix.method == "gps" and fix.accuracy_m > 0
    finally:
        fake.terminate()
        fake.wait(timeout=10)
