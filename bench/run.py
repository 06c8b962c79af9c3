"""Benchmarks for device check-ins and command delivery (issue 4, point 13).

    .venv/bin/python bench/run.py [--agents 10000] [--seconds 10] [--postgres]

Measured in one run, on this machine:
- check-in throughput of one server worker (authenticated, durable: answered after commit,
  with pending commands), p50/p99, against a bare Starlette endpoint returning a constant;
- command delivery latency (issue through the API -> agent receipt) with N agents connected
  by long-poll, p50/p99;
- server memory per connected agent.
The load comes from wrk (check-ins) and an asyncio client (long-polls), both on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import httpx
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smartprotect import migrations
from smartprotect.accounts import service as accounts
from smartprotect.accounts.models import User
from smartprotect.clock import SystemClock
from smartprotect.config import Environment, Settings
from smartprotect.db import make_engine, make_session_factory, unit_of_work
from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability
from smartprotect.devices.schemas import EnrollRequest
from smartprotect.privacy.keys.master import Keyring, LocalMasterKey, encode_key
from smartprotect.privacy.policy import service as policy
from smartprotect.signing import create as create_signing_key

MASTER = os.urandom(32)
SECRET = "bench-secret-" + "x" * 40
WRK_CONNECTIONS = 64
CONNECT_WAVE = 500
CONNECT_PAUSE_SECONDS = 0.5
WRK_THREADS = 2


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_file_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def database(workdir: Path, postgres: bool) -> str:
    if not postgres:
        return f"sqlite:///{workdir}/bench.db"
    from sqlalchemy import text

    name = f"sp_bench_{uuid.uuid4().hex[:8]}"
    with _admin().connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    return f"postgresql+psycopg://postgres@127.0.0.1/{name}"


def _admin():
    from sqlalchemy import create_engine

    return create_engine(
        "postgresql+psycopg://postgres@127.0.0.1/test", isolation_level="AUTOCOMMIT"
    )


def drop_database(url: str) -> None:
    """A PostgreSQL database the benchmark made is dropped when it ends (an SQLite file
    goes with its folder)."""
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import text

    with _admin().connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))


class Owner(NamedTuple):
    engine: Engine
    factory: sessionmaker
    keyring: Keyring
    clock: SystemClock
    user_id: uuid.UUID


def migrated_owner(url: str) -> Owner:
    """A migrated database with the policy published and one verified user, its owner."""
    settings = Settings(env=Environment.DEVELOPMENT, database_url=url, secret_key=SECRET)
    engine = make_engine(settings)
    migrations.upgrade(engine)
    keyring = Keyring(master=LocalMasterKey(MASTER), secret=SECRET)
    factory = make_session_factory(engine, keyring=keyring)
    clock = SystemClock()
    texts = {
        lang: (ROOT / "policy" / f"2017-06-15.{lang}.txt").read_text() for lang in ("en", "ru")
    }
    with unit_of_work(factory) as session:
        policy.publish_revision(session=session, keyring=keyring, version="2017-06-15",
                                texts=texts, clock=clock)  # fmt: skip
        user = accounts.create_user(
                    session=session, keyring=keyring, clock=clock,
                    email="bench@example.kz", phone="+77010000000", password_hash="x",
                    language="en", created_at=clock.now(), password_changed_at=clock.now(),
                    email_verified_at=clock.now())  # fmt: skip
    return Owner(engine, factory, keyring, clock, user.id)


def prepare(url: str, agents: int, key_file: Path) -> tuple[list[str], str, list[str]]:
    """A user, N enrolled devices and an API token; returns credentials, token, device ids."""
    engine, factory, keyring, clock, user_id = migrated_owner(url)
    with unit_of_work(factory) as session:
        _, token = accounts.create_api_token(session=session, user=session.get(User, user_id),
                                             name="bench", clock=clock,
                                             keyring=keyring)  # fmt: skip
    credentials, device_ids = [], []
    batch = 500
    for start in range(0, agents, batch):
        with unit_of_work(factory) as session:
            user = session.get(User, user_id)
            for _ in range(min(batch, agents - start)):
                _, code = devices.create_enrollment_code(
                    session=session, keyring=keyring, user=user, device_name="bench",
                    capabilities=[Capability.LOCATE, Capability.RING], clock=clock,
                )  # fmt: skip
                device, credential = devices.enroll(
                    session=session, keyring=keyring, clock=clock,
                    request=EnrollRequest(code=code, platform="linux"),
                )  # fmt: skip
                credentials.append(credential)
                device_ids.append(str(device.id))
    if engine.dialect.name == "postgresql":
        # As autovacuum would soon after a bulk load: without statistics the planner does not
        # know the fresh tables' shape (the consent lookup took 16 ms a batch instead of 1).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    return credentials, token, device_ids


def start(
    argv: list[str], env: dict[str, str], port: int, path: str = "/healthz", log: Path | None = None
) -> subprocess.Popen:
    output = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=output, stderr=output)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{argv} did not start")


def set_up(prefix: str, *, postgres: bool, devices: int):
    """A working folder, a migrated database with `devices` enrolled devices, and the
    command-signing key: (folder, database URL, key file, `prepare`'s result)."""
    raise_file_limit()
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    url = database(workdir, postgres)
    key_file = workdir / "command.key"
    create_signing_key(key_file)
    print(f"preparing {devices} devices on {url.split(':')[0]}...", flush=True)
    return workdir, url, key_file, prepare(url, devices, key_file)


def server_env(url: str, key_file: Path, workdir: Path) -> dict[str, str]:
    """Settings for a benchmarked server: no mail goes out, no retention run of its own."""
    return {
        "SMARTPROTECT_ENV": "development", "SMARTPROTECT_DATABASE_URL": url,
        "SMARTPROTECT_SECRET_KEY": SECRET, "SMARTPROTECT_MASTER_KEY": encode_key(MASTER),
        "SMARTPROTECT_COMMAND_SIGNING_KEY_FILE": str(key_file),
        "SMARTPROTECT_MAIL_BACKEND": "smtp", "SMARTPROTECT_SMTP_PORT": "1",
        "SMARTPROTECT_VAR_DIR": str(workdir / "var"),
        "SMARTPROTECT_RETENTION_INTERVAL_SECONDS": "0",
    }  # fmt: skip


def start_server(
    env: dict[str, str], workdir: Path, log: str = "server.log"
) -> tuple[subprocess.Popen, int]:
    """`smartprotect serve` (one uvicorn worker) on a free port, its log in `workdir`."""
    port = free_port()
    server = start([sys.executable, "-m", "smartprotect", "serve", "--port", str(port)], env,
                   port, log=workdir / log)  # fmt: skip
    return server, port


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str, seconds: int, script: Path | None = None, connections: int = WRK_CONNECTIONS
) -> dict:
    argv = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        argv += ["-s", str(script)]
    output = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)$", output, flags=re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rps": rps, "p50": latency.get("50"), "p99": latency.get("99"),
            "non_2xx": int(errors.group(1)) if errors else 0}  # fmt: skip


def check_in_script(path: Path, credentials: list[str]) -> Path:
    """A wrk script posting check-ins, each from the next credential, each with one new fix:
    its time a microsecond on from the last one (per wrk thread), as devices report fixes
    they have not sent before."""
    body = json.dumps({"battery_percent": 80, "locations": [
        {"latitude": 43.2389, "longitude": 76.8897, "accuracy_m": 20, "method": "gps",
         "fixed_at": "FIXED_AT"}]})  # fmt: skip
    before, after = body.split("FIXED_AT")
    lua = ["wrk.method = 'POST'", "wrk.headers['Content-Type'] = 'application/json'",
           "local threads = 0",
           "function setup(thread) thread:set('number', threads); threads = threads + 1 end",
           "local tokens = {"]  # fmt: skip
    lua += [f"  '{c}'," for c in credentials]
    lua += ["}", "local i = 0",
            # A minute ago when this run of wrk began, then a microsecond a check-in.
            "local start = os.time() - 60",
            f"local before, after = {json.dumps(before)}, {json.dumps(after)}",
            "request = function()",
            "  i = i + 1",
            "  local micros = i * 2 + (number or 0)",
            "  local at = os.date('!%Y-%m-%dT%H:%M:%S', start + math.floor(micros / 1000000))",
            "  local body = before .. at .. string.format('.%06d+00:00', micros % 1000000)",
            "    .. after",
            "  wrk.headers['Authorization'] = 'Bearer ' .. tokens[i % #tokens + 1]",
            "  return wrk.format(nil, '/api/v1/agent/check-in', nil, body)",
            "end"]  # fmt: skip
    path.write_text("\n".join(lua) + "\n")
    return path


async def delivery(base: str, token: str, credentials: list[str], device_ids: list[str],
                   server_pid: int, commands: int, other: str | None = None) -> dict:  # fmt: skip
    """Connect every agent by long-poll, then time commands from issue to receipt: issued
    through the server the agents are connected to and, with `other`, alternately through
    another server sharing its database (the command reaches the agents' server by
    PostgreSQL's NOTIFY)."""
    received: dict[str, float] = {}
    baseline = rss_kib(server_pid)
    stop = asyncio.Event()
    host, port = base.removeprefix("http://").split(":")

    async def agent(credential: str) -> None:
        # Plain HTTP/1.1 over one kept-alive connection: an HTTP client library costs more
        # CPU per connection than 10,000 of them leave on a 2-core machine.
        request = (f"GET /api/v1/agent/commands?wait=60 HTTP/1.1\r\nHost: {host}\r\n"
                   f"Authorization: Bearer {credential}\r\n\r\n").encode()  # fmt: skip
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
                while not stop.is_set():
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
                    body = json.loads(await reader.readexactly(length))
                    for command in body.get("commands", []):
                        received[command["command_id"]] = time.perf_counter()
            except (OSError, asyncio.IncompleteReadError, AttributeError):
                await asyncio.sleep(0.5 + random.random())

    # Devices come online in waves, as they would, not all in the same instant.
    tasks = []
    pairs = list(zip(credentials, device_ids, strict=True))
    for start in range(0, len(pairs), CONNECT_WAVE):
        tasks += [asyncio.create_task(agent(c)) for c, _ in pairs[start : start + CONNECT_WAVE]]
        await asyncio.sleep(CONNECT_PAUSE_SECONDS)
    # No kept-alive connections: the server may close an idle one just as it is reused.
    fresh = httpx.Limits(max_keepalive_connections=0)

    def client(url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=60, limits=fresh)  # fmt: skip

    api = client(base)

    async def waiting_devices() -> int:
        try:
            return (await api.get("/healthz")).json().get("waiting_devices", 0)
        except httpx.HTTPError:
            return 0

    # Wait until the server holds every long-poll.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and await waiting_devices() < len(credentials):
        await asyncio.sleep(0.5)
    connected = await waiting_devices()
    memory = rss_kib(server_pid)
    issuers = {"same": api}
    if other:
        issuers["other"] = client(other)
    latencies: dict[str, list[float]] = {name: [] for name in issuers}
    for _ in range(commands):
        for name, issuer in issuers.items():
            device_id = random.choice(device_ids)
            issued = time.perf_counter()
            response = await issuer.post(f"/api/v1/devices/{device_id}/commands",
                                         json={"kind": "ring"})  # fmt: skip
            command_id = response.json()["id"]
            while command_id not in received:
                await asyncio.sleep(0.0005)
            latencies[name].append((received[command_id] - issued) * 1000)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for issuer in issuers.values():
        await issuer.aclose()
    result = {
        "connected": connected,
        **percentiles(latencies["same"]),
        "memory_per_agent_kib": round((memory - baseline) / max(connected, 1), 1),
        "server_rss_mib": round(memory / 1024, 1),
    }
    if other:
        result["issued_through_other_instance"] = percentiles(latencies["other"])
    return result


def percentiles(latencies: list[float]) -> dict[str, float]:
    """p50 and p99 of latencies in milliseconds."""
    ordered = sorted(latencies)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[max(int(len(ordered) * 0.99) - 1, 0)], 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--other-instance",
        action="store_true",
        help="also issue commands through a second server (PostgreSQL only)",
    )
    options = parser.parse_args()
    if options.other_instance and not options.postgres:
        parser.error("--other-instance needs --postgres: on SQLite one server serves all")
    workdir, url, key_file, (credentials, token, device_ids) = set_up(
        "sp-bench-", postgres=options.postgres, devices=options.agents
    )

    results: dict[str, object] = {"engine": "postgresql" if options.postgres else "sqlite",
                                  "cores": os.cpu_count(), "agents": options.agents}  # fmt: skip
    bare_port = free_port()
    bare = start([sys.executable, "-m", "uvicorn", "bench.bare:app", "--port", str(bare_port),
                  "--no-access-log", "--log-level", "warning"], {"PYTHONPATH": str(ROOT)},
                 bare_port, path="/")  # fmt: skip
    server, port = start_server(server_env(url, key_file, workdir), workdir)
    print(f"server log: {workdir / 'server.log'}", flush=True)
    other = (start_server(server_env(url, key_file, workdir), workdir, log="other-server.log")
             if options.other_instance else None)  # fmt: skip
    try:
        # Both get exactly the same requests; rounds alternate, since the machine is noisy.
        script = check_in_script(workdir / "check-in.lua", credentials[:500])
        rounds = []
        for _ in range(options.rounds):
            baseline = wrk(f"http://127.0.0.1:{bare_port}", options.seconds, script)
            cpu0 = process_cpu_seconds(server.pid)
            started = time.monotonic()
            check_in = wrk(f"http://127.0.0.1:{port}", options.seconds, script)
            check_in["server_cpu_share"] = round(
                (process_cpu_seconds(server.pid) - cpu0) / (time.monotonic() - started), 2
            )
            rounds.append({"bare_starlette": baseline, "check_in": check_in,
                           "ratio": round(check_in["rps"] / baseline["rps"], 3)})  # fmt: skip
        results["rounds"] = rounds
        results["median_bare_rps"] = statistics.median(r["bare_starlette"]["rps"] for r in rounds)
        results["median_check_in_rps"] = statistics.median(r["check_in"]["rps"] for r in rounds)
        results["median_check_in_vs_bare"] = statistics.median(r["ratio"] for r in rounds)
        print(json.dumps(results, indent=2), flush=True)
        if options.commands:
            results["delivery"] = asyncio.run(
                delivery(f"http://127.0.0.1:{port}", token, credentials, device_ids, server.pid,
                         options.commands, other=other and f"http://127.0.0.1:{other[1]}")
            )  # fmt: skip
    finally:
        for process in (server, bare, *([other[0]] if other else [])):
            process.terminate()
            process.wait()
        drop_database(url)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
