"""Check-ins are answered ahead of the middleware stack; anything unusual is handed, body and
all, to the regular stack, which answers exactly as it does for every other route."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from smartprotect.api import fast_path
from smartprotect.devices.models import DeviceLocation
from tests.api.test_agent import _fix, code, credential  # noqa: F401 (fixtures)

CHECK_IN = "/api/v1/agent/check-in"


def _stored(db) -> int:
    return db.scalar(select(func.count()).select_from(DeviceLocation))


def test_a_good_check_in_takes_the_fast_path(client, credential, clock, db):  # noqa: F811
    response = client.post(
        CHECK_IN, json={"locations": [_fix(clock)]},
        headers={"Authorization": f"Bearer {credential}"},
    )  # fmt: skip
    assert response.status_code == 200 and response.json()["locations_stored"] == 1
    # The fast path's own headers: a personal JSON answer to a device, never cached...
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["strict-transport-security"].startswith("max-age=")
    # ...without the page policies the middleware adds to everything else.
    assert "content-security-policy" not in response.headers
    assert _stored(db) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b'{"locations": [', {}, 422),  # not JSON
        (b'{"battery_percent": 140}', {}, 422),
        (b"{}", {"Authorization": "Bearer spdc_unknown"}, 401),
        (b"{}", {"Authorization": ""}, 401),
    ],
)
def test_anything_unusual_gets_the_regular_answer(
    client,
    credential,  # noqa: F811
    db,
    body,
    headers,
    status,
):
    response = client.post(
        CHECK_IN, content=body,
        headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/json",
                 **headers},
    )  # fmt: skip
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    # The regular stack answered: its security headers are there.
    assert "content-security-policy" in response.headers
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    assert _stored(db) == 0


def test_a_body_past_the_fast_limit_is_read_whole_by_the_regular_stack(
    client,
    credential,  # noqa: F811
    clock,
    db,
):
    # Valid and larger than the fast path reads: the regular route stores it all.
    fixes = [
        _fix(clock, fixed_at=(clock.now() - timedelta(seconds=n)).isoformat(), note="x" * 1000)
        for n in range(100)
    ]
    body = {"locations": fixes}
    response = client.post(CHECK_IN, json=body, headers={"Authorization": f"Bearer {credential}"})
    assert len(response.request.content) > fast_path.FAST_BODY_LIMIT
    assert response.status_code == 200, response.text
    assert response.json()["locations_stored"] == 100
    assert "content-security-policy" in response.headers
    assert _stored(db) == 100


def test_bodies_over_a_megabyte_are_refused(client, credential):  # noqa: F811
    response = client.post(
        CHECK_IN, content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 413


def _exchange(app, chunks: list[bytes]) -> tuple[int, bytes]:
    """Run one POST through an ASGI app, its body sent in these chunks."""
    import asyncio

    incoming = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict] = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": CHECK_IN, "headers": [],
             "query_string": b""}  # fmt: skip
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("fails", [False, True])
def test_the_regular_stack_gets_the_whole_body_in_chunks(fails):
    from starlette.requests import Request
    from starlette.responses import Response

    async def regular(scope, receive, send):
        body = await Request(scope, receive).body()
        await Response(b"regular:" + body)(scope, receive, send)

    async def answer(_scope, body):
        if fails:
            raise ValueError("not for the fast path")
        return b"fast:" + body

    app = fast_path.FastPath(regular, routes={("POST", CHECK_IN): answer}, headers=[])
    small = [b"a" * 10, b"b" * 10]
    assert _exchange(app, small) == (200, (b"regular:" if fails else b"fast:") + b"".join(small))
    large = [bytes([65 + n]) * 40_000 for n in range(4)]
    assert _exchange(app, large) == (200, b"regular:" + b"".join(large))


@pytest.mark.parametrize(
    ("after", "stored", "accounts"), [(900, 0, False), (60, 3, True), (900, 100, False)]
)
def test_an_answer_without_commands_is_the_models_own(after, stored, accounts):
    from smartprotect.api.v1 import agent
    from smartprotect.devices.schemas import CheckInResponse

    model = CheckInResponse(
        check_in_after_seconds=after, locations_stored=stored, accounts_stored=accounts
    )
    quiet = agent._QUIET_ANSWER % (after, stored, agent._JSON_BOOL[accounts])
    assert quiet == model.model_dump_json().encode()
