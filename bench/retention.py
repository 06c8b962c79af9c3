"""Retention over millions of expired location rows, and check-ins while it runs (issue 5).

    .venv/bin/python bench/retention.py --rows 10000000 [--postgres]

Loads N location rows received 400 days ago (past the 1-year retention) for 500 enrolled
devices, starts the server (with its own retention schedule off), and measures with `wrk`:

- check-in latency and throughput for `--seconds` with no retention run (the baseline);
- the same while `smartprotect retention run` destroys the N rows (same load, same run);
- how long the retention run took, and its rate.

The load is `wrk` with 16 connections: closed-loop, so latency includes queueing; the two
windows get exactly the same load, which is what makes them comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

# The sibling benchmark's helpers (this script's folder is on the path when it runs).
from run import (
    check_in_script,
    drop_database,
    server_env,
    set_up,
    start_server,
    wrk,
)

AGE = timedelta(days=400)
LOAD_BATCH = 200_000
WRK_CONNECTIONS = 16


def _taken(received: datetime, row: int) -> datetime:
    """Each fix its own time, a microsecond before the last (a device's fixes are unique by
    time)."""
    return received - timedelta(microseconds=row)


def load_rows(url: str, device_ids: list[str], rows: int) -> float:
    """Insert `rows` expired fixes as fast as the engine takes them; returns seconds."""
    started = time.monotonic()
    received = datetime.now(UTC) - AGE
    sealed = os.urandom(103)  # the size of a real sealed fix; never opened here
    devices = [uuid.UUID(d) for d in device_ids]
    millis = int(received.timestamp() * 1000)
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-1000000")
        moment = received.strftime("%Y-%m-%d %H:%M:%S.%f")
        for start_row in range(0, rows, LOAD_BATCH):
            batch = (
                (f"{millis + i // 1000:012x}7000{i:016x}", devices[i % len(devices)].hex,
                 _taken(received, i).strftime("%Y-%m-%d %H:%M:%S.%f"), moment, sealed)
                for i in range(start_row, min(start_row + LOAD_BATCH, rows))
            )  # fmt: skip
            connection.executemany(
                "INSERT INTO device_locations (id, device_id, fixed_at, received_at, sealed) "
                "VALUES (?, ?, ?, ?, ?)",
                batch,
            )
            connection.commit()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
    else:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
            with (
                connection.cursor() as cursor,
                cursor.copy(
                    "COPY device_locations (id, device_id, fixed_at, received_at, sealed) "
                    "FROM STDIN"
                ) as copy,
            ):
                for i in range(rows):
                    row_id = uuid.UUID(f"{millis + i // 1000:012x}7000{i:016x}")
                    copy.write_row(
                        (row_id, devices[i % len(devices)], _taken(received, i), received, sealed)
                    )
            connection.commit()
            connection.autocommit = True  # VACUUM runs outside a transaction
            connection.execute("VACUUM ANALYZE device_locations")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--postgres", action="store_true")
    options = parser.parse_args()
    workdir, url, key_file, (credentials, _token, device_ids) = set_up(
        "sp-bench-retention-", postgres=options.postgres, devices=options.devices
    )
    print(f"loading {options.rows:,} expired location rows...", flush=True)
    results: dict[str, object] = {"engine": url.split(":")[0].split("+")[0], "rows": options.rows,
                                  "cores": os.cpu_count()}  # fmt: skip
    results["load_seconds"] = round(load_rows(url, device_ids, options.rows), 1)
    env = server_env(url, key_file, workdir)
    server, port = start_server(env, workdir)
    target = f"http://127.0.0.1:{port}"
    script = check_in_script(workdir / "check-in.lua", credentials)
    try:
        wrk(target, 2, script, connections=WRK_CONNECTIONS)  # warm up
        results["check_in_without_retention"] = wrk(
            target, options.seconds, script, connections=WRK_CONNECTIONS
        )
        started = time.monotonic()
        job = subprocess.Popen(
            [sys.executable, "-m", "smartprotect", "retention", "run"],
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        during = []
        while job.poll() is None:
            during.append(wrk(target, options.seconds, script, connections=WRK_CONNECTIONS))
        output = job.communicate()[0]
        took = time.monotonic() - started
        if job.returncode != 0:
            raise RuntimeError(output)
        results["retention_run"] = {
            "seconds": round(took, 1),
            "rows_per_second": round(options.rows / took),
            "output": [line for line in output.splitlines() if "device_locations" in line],
        }
        # Windows that ended after the run are still counted: they started while it ran.
        results["check_in_during_retention"] = during
        results["check_in_after_retention"] = wrk(
            target, options.seconds, script, connections=WRK_CONNECTIONS
        )
    finally:
        server.terminate()
        server.wait()
        drop_database(url)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
