"""A real server process for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from smartprotect.privacy.keys.master import encode_key
from tests.conftest import TEST_MASTER_KEY, TEST_SECRET, free_port

STARTUP_TIMEOUT_SECONDS = 30


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen


@contextmanager
def live_server(
    *,
    database_url: str,
    smtp_port: int,
    log_path,
    command_key_file=None,
    port: int | None = None,
    env: str = "development",
    **extra: str,
) -> Iterator[LiveServer]:
    """Run `smartprotect serve` in its own process until the block ends."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "SMARTPROTECT_ENV": env,
        "SMARTPROTECT_SECRET_KEY": TEST_SECRET,
        "SMARTPROTECT_MASTER_KEY": encode_key(TEST_MASTER_KEY),
        "SMARTPROTECT_DATABASE_URL": database_url,
        "SMARTPROTECT_BASE_URL": url,
        "SMARTPROTECT_MAIL_BACKEND": "smtp",
        "SMARTPROTECT_SMTP_PORT": str(smtp_port),
        "SMARTPROTECT_MAIL_POLL_SECONDS": "1",
        "SMARTPROTECT_VAR_DIR": str(Path(log_path).parent / "var"),
        **(
            {"SMARTPROTECT_COMMAND_SIGNING_KEY_FILE": str(command_key_file)}
            if command_key_file
            else {}
        ),
        **extra,
    }
    # To a file, not a pipe: nobody reads a pipe while the tests run, and a full one
    # would stall the server.
    log = open(log_path, "w")  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [sys.executable, "-m", "smartprotect", "serve", "--port", str(port)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {Path(log_path).read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start in time")
            time.sleep(0.1)
        yield LiveServer(url=url, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
