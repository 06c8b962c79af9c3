"""FMD protocol throughput against django-fmd, the Python FMD server on PyPI (issue 6).

    .venv/bin/python bench/fmd.py [--phones 50] [--seconds 8] [--rounds 3] [--postgres]

Measured in one run, on this machine, with the same load generator (wrk) and the same requests:
- location uploads (`POST /api/v1/location`, a 730-character encrypted blob, as the FMD app
  sends one) per second;
- command polls (`PUT /api/v1/command`, as the app polls its command slot) per second;
each spread over N registered phones, each phone logged in once beforehand. Rounds alternate
the two servers; the figures are medians of the rounds.

Our server: `smartprotect serve`, one uvicorn worker, SQLite (or PostgreSQL). django-fmd:
its production settings (`findmydevice_project.settings.prod`, SQLite), served by gunicorn
(its own dependency) with one worker; installed into a virtualenv of its own under .bench/ the
first time. django-fmd skips a location that comes within 30 s of the last one of the same
phone (`FMD_MIN_LOCATION_DATE_RANGE_SEC`); the benchmark sets that to 0, so that both servers
store every upload.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (
    database,
    free_port,
    migrated_owner,
    raise_file_limit,
    server_env,
    start,
    start_server,
    wrk,
)

from smartprotect.accounts.models import User
from smartprotect.db import unit_of_work
from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability

ROOT = Path(__file__).resolve().parent.parent
DJANGO_FMD = "django-fmd==0.9.2"
# Its own virtualenv, made on first use (ignored by git).
DJANGO_VENV = ROOT / ".bench" / "django-fmd-venv"
CONNECTIONS = 32
# What the app sends as a login hash and keys: the servers store them, never check them
# against anything but the login hash itself.
LOGIN_HASH = "$argon2id$v=19$m=131072,t=1,p=4$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43
# An encrypted location as the app 0.15 uploads it: RSA-3072 key packet, IV, AES-GCM.
BLOB = base64.b64encode(os.urandom(384 + 12 + 150)).decode()
DJANGO_SETTINGS = """
from findmydevice_project.settings.prod import *  # noqa
ALLOWED_HOSTS = ["*"]
DEBUG = False
REGISTRATION_TOKEN = ""
FMD_MIN_LOCATION_DATE_RANGE_SEC = 0
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r},
                            "OPTIONS": {{"timeout": 30}}}}}}
LOGGING = {{"version": 1, "disable_existing_loggers": True}}
"""


def enrollment_codes(url: str, count: int) -> list[str]:
    """An owner with `count` enrollment codes: each an FMD phone's registration token."""
    engine, factory, keyring, clock, user_id = migrated_owner(url)
    with unit_of_work(factory) as session:
        user = session.get(User, user_id)
        codes = [
            devices.create_enrollment_code(
                session=session, keyring=keyring, user=user, device_name=f"phone {n}",
                capabilities=[Capability.LOCATE, Capability.RING], clock=clock,
            )[1]
            for n in range(count)
        ]  # fmt: skip
    engine.dispose()
    return codes


def register_phones(base: str, codes: list[str]) -> list[str]:
    """Register one phone per code as the app does, and log each in; their access tokens."""
    tokens = []
    with httpx.Client(base_url=base + "/api/v1", timeout=30) as http:
        for code in codes:
            registered = http.put("/device", json={
                "hashedPassword": LOGIN_HASH, "pubkey": "cHVi", "privkey": "cHJpdg",
                "requestedUsername": "", "registrationToken": code,
            })  # fmt: skip
            registered.raise_for_status()
            name = registered.json()["DeviceId"]
            access = http.put("/requestAccess", json={
                "IDT": name, "Data": LOGIN_HASH, "SessionDurationSeconds": 604800,
            })  # fmt: skip
            access.raise_for_status()
            tokens.append(access.json()["Data"])
    return tokens


def django_fmd(workdir: Path) -> tuple[subprocess.Popen, int]:
    """django-fmd, migrated, served by gunicorn with one worker."""
    python = DJANGO_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DJANGO_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", DJANGO_FMD, "gunicorn"],
                       check=True)  # fmt: skip
    settings_dir = workdir / "django_settings"
    settings_dir.mkdir()
    (settings_dir / "bench_settings.py").write_text(
        DJANGO_SETTINGS.format(db=str(workdir / "django-fmd.sqlite3"))
    )
    env = {"DJANGO_SETTINGS_MODULE": "bench_settings", "PYTHONPATH": str(settings_dir)}
    subprocess.run([str(python), "-m", "django", "migrate", "--no-input"],
                   env={**os.environ, **env}, check=True, capture_output=True)  # fmt: skip
    port = free_port()
    process = start([str(DJANGO_VENV / "bin" / "gunicorn"), "--workers", "1", "--bind",
                     f"127.0.0.1:{port}", "--log-level", "warning",
                     "findmydevice_project.wsgi:application"],
                    env, port, path="/api/v1/version", log=workdir / "django-fmd.log")  # fmt: skip
    return process, port


def script(path: Path, method: str, target: str, tokens: list[str], data: str) -> Path:
    """A wrk script sending `method target` with the app's JSON body, rotating the phones."""
    lua = [f"wrk.method = '{method}'", "wrk.headers['Content-Type'] = 'application/json'",
           f"local data = {json.dumps(data)}", "local tokens = {"]  # fmt: skip
    lua += [f"  '{token}'," for token in tokens]
    lua += ["}", "local i = 0", "request = function()", "  i = i % #tokens + 1",
            "  local body = '{\"IDT\":\"' .. tokens[i] .. '\",\"Data\":\"' .. data .. '\"}'",
            f"  return wrk.format(nil, '{target}', nil, body)", "end"]  # fmt: skip
    path.write_text("\n".join(lua) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phones", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", action="store_true")
    options = parser.parse_args()
    raise_file_limit()
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="sp-bench-fmd-"))
    url = database(workdir, options.postgres)
    from smartprotect.signing import create as create_signing_key

    key_file = workdir / "command.key"
    create_signing_key(key_file)
    codes = enrollment_codes(url, options.phones)
    ours, our_port = start_server(server_env(url, key_file, workdir), workdir)
    theirs, their_port = django_fmd(workdir)
    servers = {"smartprotect": f"http://127.0.0.1:{our_port}",
               "django-fmd": f"http://127.0.0.1:{their_port}"}  # fmt: skip
    results: dict = {"engine": "postgresql" if options.postgres else "sqlite",
                     "cores": os.cpu_count(), "phones": options.phones}  # fmt: skip
    try:
        tokens = {
            "smartprotect": register_phones(servers["smartprotect"], codes),
            "django-fmd": register_phones(servers["django-fmd"], [""] * len(codes)),
        }
        loads = {
            "location_upload": ("POST", "/api/v1/location", BLOB),
            "command_poll": ("PUT", "/api/v1/command", ""),
        }
        rounds = []
        for _ in range(options.rounds):
            measured: dict = {}
            for load, (method, target, data) in loads.items():
                for name, base in servers.items():
                    lua = script(workdir / f"{name}-{load}.lua", method, target, tokens[name],
                                 data)  # fmt: skip
                    measured.setdefault(load, {})[name] = wrk(base, options.seconds, lua,
                                                              CONNECTIONS)  # fmt: skip
                pair = measured[load]
                pair["ratio"] = round(pair["smartprotect"]["rps"] / pair["django-fmd"]["rps"], 2)
            rounds.append(measured)
            print(json.dumps(measured), flush=True)
        results["rounds"] = rounds
        for load in loads:
            results[load] = {
                "median_smartprotect_rps": statistics.median(
                    r[load]["smartprotect"]["rps"] for r in rounds),
                "median_django_fmd_rps": statistics.median(
                    r[load]["django-fmd"]["rps"] for r in rounds),
                "median_ratio": statistics.median(r[load]["ratio"] for r in rounds),
            }  # fmt: skip
    finally:
        for process in (ours, theirs):
            process.terminate()
            process.wait()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
