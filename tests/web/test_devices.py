"""The dashboard: adding a device shows a code; devices show last seen, battery, location."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select

from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from tests.helpers import form_page


def test_adding_a_device_shows_a_one_time_code(signed_in):
    client = signed_in
    page = client.get("/devices")
    assert page.status_code == 200 and "You have no protected devices yet" in page.text
    token = form_page(client, "/devices")
    response = client.post(
        "/devices/enrollment-codes",
        data={"csrf_token": token, "device_name": "Work laptop", "capability_locate": "on",
              "capability_wipe": "on"},
    )  # fmt: skip
    assert response.status_code == 201
    code = re.search(r'id="enrollment-code">([A-Z0-9-]+)<', response.text).group(1)
    assert len(code) == 14
    assert f"--code {code} --allow-wipe" in response.text
    # The same code registers a phone with the FMD app.
    assert "https://testserver, and give this code as the registration token" in response.text

    enrolled = client.post(
        "/api/v1/agent/enroll",
        json={"code": code, "platform": "linux", "allowed": ["locate", "ring", "lock"]},
    )
    assert enrolled.status_code == 201
    credential = enrolled.json()["credential"]
    client.post(
        "/api/v1/agent/check-in",
        json={"battery_percent": 64, "locations": [{"latitude": 43.238949, "longitude": 76.889709,
              "accuracy_m": 30, "method": "wifi", "fixed_at": "2026-01-01T00:00:00+00:00"}]},
        headers={"Authorization": f"Bearer {credential}"},
    )  # fmt: skip
    page = client.get("/devices").text
    assert "Work laptop" in page and "64%" in page and "43.23895, 76.88971" in page
    assert "± 30 m · wifi" in page
    device_id = enrolled.json()["device_id"]
    detail = client.get(f"/devices/{device_id}").text
    assert "2026-01-01 00:00:00 UTC" in detail and "wifi" in detail


def test_a_name_is_required(signed_in):
    token = form_page(signed_in, "/devices")
    response = signed_in.post("/devices/enrollment-codes", data={"csrf_token": token})
    assert response.status_code == 422 and 'id="e-device_name"' in response.text


def test_another_users_device_is_not_found_and_takes_no_commands(signed_in, db, clock, keyring):
    from sqlalchemy import func, select

    from smartprotect.commands.models import Command
    from tests.helpers import add_device, add_owner

    stranger = add_owner(db, clock=clock, keyring=keyring, email="stranger@example.kz")
    theirs = add_device(db, keyring=keyring, clock=clock, owner=stranger,
                        capabilities=("locate", "ring", "lock"))  # fmt: skip
    db.commit()
    assert signed_in.get(f"/devices/{uuid.uuid4()}").status_code == 404
    assert signed_in.get(f"/devices/{theirs.id}").status_code == 404
    token = form_page(signed_in, "/devices")
    for path, data in ((f"/devices/{theirs.id}/commands", {"kind": "ring"}),
                       (f"/devices/{theirs.id}/lost", {"lost": "on"})):  # fmt: skip
        refused = signed_in.post(path, data={"csrf_token": token, **data})
        assert refused.status_code == 404
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Command)) == 0
    assert db.get(type(theirs), theirs.id).lost is False


def _enrolled(client, capabilities=("locate", "ring", "lock", "wipe")):
    token = form_page(client, "/devices")
    data = {"csrf_token": token, "device_name": "Work laptop"}
    data.update({f"capability_{c}": "on" for c in capabilities})
    response = client.post("/devices/enrollment-codes", data=data)
    code = re.search(r'id="enrollment-code">([A-Z0-9-]+)<', response.text).group(1)
    enrolled = client.post(
        "/api/v1/agent/enroll",
        json={"code": code, "platform": "linux", "allowed": list(capabilities)},
    ).json()
    return enrolled["device_id"], {"Authorization": f"Bearer {enrolled['credential']}"}, token


def test_commands_from_the_device_page(signed_in, mailbox, deliver, db):
    from tests.helpers import PASSWORD

    client = signed_in
    device_id, auth, token = _enrolled(client)
    page = f"/devices/{device_id}"
    assert (
        client.post(f"{page}/commands", data={"csrf_token": token, "kind": "ring"}).status_code
        == 303
    )
    fragment = client.get(f"{page}/commands").text
    assert "Ring" in fragment and "queued" in fragment and "<html" not in fragment

    # A wipe needs the password and the device's name, typed.
    bad = client.post(
        f"{page}/commands",
        data={"csrf_token": token, "kind": "wipe", "password": "nope", "confirm_name": "x"},
    )
    assert bad.status_code == 422
    assert 'id="e-password"' in bad.text and 'id="e-confirm_name"' in bad.text
    good = client.post(
        f"{page}/commands",
        data={"csrf_token": token, "kind": "wipe", "password": PASSWORD,
              "confirm_name": "Work laptop"},
    )  # fmt: skip
    assert good.status_code == 303
    deliver()
    assert "A wipe of Work laptop was requested" in mailbox.last_to("aigerim@example.kz")["Subject"]

    # The device fetches both; the owner is told the wipe can no longer be cancelled.
    answer = client.post("/api/v1/agent/check-in", json={}, headers=auth).json()
    assert [c["kind"] for c in answer["commands"]] == ["ring", "wipe"]
    deliver()
    assert "has received the wipe" in mailbox.last_to("aigerim@example.kz")["Subject"]
    wipe_id = answer["commands"][1]["command_id"]
    client.post(f"/api/v1/agent/commands/{wipe_id}/state", json={"state": "running"}, headers=auth)
    # Issued while the wipe runs: the device will never fetch it.
    ring = client.post(f"{page}/commands", data={"csrf_token": token, "kind": "ring"})
    assert ring.status_code == 303
    client.post(
        f"/api/v1/agent/commands/{wipe_id}/state",
        json={"state": "succeeded", "result": {"files_removed": 4, "failures": 0}},
        headers=auth,
    )
    deliver()
    assert "has been wiped" in mailbox.last_to("aigerim@example.kz")["Subject"]
    assert client.post("/api/v1/agent/check-in", json={}, headers=auth).status_code == 401
    wiped = client.get(page).text
    assert "takes no more commands" in wiped
    # What was done to it stays in view; its permissions no longer apply to anything.
    history = wiped[wiped.index('id="commands"') :]
    assert "Wipe" in history and "succeeded" in history
    assert "4 file(s) removed, 0 could not be removed." in history
    assert "Permissions" not in wiped and "Mark as lost" not in wiped
    # Nothing is left waiting for it (nor a Cancel button), and the list no longer polls.
    assert "queued" not in history and "Cancel" not in history and "cancelled" in history
    assert "hx-trigger" not in history
    cancelled = db.scalars(
        select(AuditEvent).where(AuditEvent.action == Tag.COMMAND_CANCELLED.value)
    ).all()
    assert [event.actor for event in cancelled] == ["server"]


def test_a_queued_command_can_be_cancelled_from_the_page(signed_in, db):
    from sqlalchemy import select

    from smartprotect.commands.models import Command

    client = signed_in
    device_id, _auth, token = _enrolled(client)
    client.post(f"/devices/{device_id}/commands", data={"csrf_token": token, "kind": "locate"})
    command_id = db.scalar(select(Command.id))
    response = client.post(
        f"/devices/{device_id}/commands/{command_id}/cancel", data={"csrf_token": token}
    )
    assert response.status_code == 303
    assert "cancelled" in client.get(f"/devices/{device_id}/commands").text


def test_lost_mode_reports_often_and_mails_when_found(signed_in, mailbox, deliver, db, clock):
    from sqlalchemy import select

    from smartprotect.devices.models import TheftIncident

    client = signed_in
    device_id, auth, token = _enrolled(client)
    assert (
        client.post("/api/v1/agent/check-in", json={}, headers=auth).json()[
            "check_in_after_seconds"
        ]
        == 15 * 60
    )
    client.post(f"/devices/{device_id}/lost", data={"csrf_token": token, "lost": "1"})
    incident = db.scalar(select(TheftIncident))
    assert incident.platform == "linux" and incident.region == "unknown"
    answer = client.post("/api/v1/agent/check-in", json={}, headers=auth).json()
    assert answer["check_in_after_seconds"] == 60
    deliver()
    assert "is back online" in mailbox.last_to("aigerim@example.kz")["Subject"]
    client.post("/api/v1/agent/check-in", json={}, headers=auth)
    deliver()
    assert sum("is back online" in m["Subject"] for m in mailbox.to("aigerim@example.kz")) == 1

    # Found, then lost again after reporting from Almaty: the incident keeps the day and a
    # whole-degree region, nothing finer (for anonymous statistics).
    client.post(f"/devices/{device_id}/lost", data={"csrf_token": token, "lost": "0"})
    fix = {"latitude": 43.238949, "longitude": 76.889709, "accuracy_m": 20, "method": "gps",
           "fixed_at": clock.now().isoformat()}  # fmt: skip
    client.post("/api/v1/agent/check-in", json={"locations": [fix]}, headers=auth)
    client.post(f"/devices/{device_id}/lost", data={"csrf_token": token, "lost": "1"})
    db.expire_all()
    incidents = db.scalars(select(TheftIncident).order_by(TheftIncident.id)).all()
    assert len(incidents) == 2
    [again] = [i for i in incidents if i.region != "unknown"]
    assert again.region == "43N 77E" and again.reported_on == clock.now().date()
    assert {column.name for column in TheftIncident.__table__.columns} == {
        "id", "reported_on", "region", "platform"}  # fmt: skip


def test_remote_wipe_can_be_turned_off_per_device(signed_in):
    from tests.helpers import PASSWORD

    client = signed_in
    device_id, _auth, token = _enrolled(client)
    page = f"/devices/{device_id}"
    client.post(f"{page}/permissions/wipe", data={"csrf_token": token, "granted": "0"})
    html = client.get(page).text
    assert 'value="wipe"' not in html  # the wipe form is gone
    response = client.post(
        f"{page}/commands",
        data={"csrf_token": token, "kind": "wipe", "password": PASSWORD,
              "confirm_name": "Work laptop"},
    )  # fmt: skip
    assert response.status_code == 403
    client.post(f"{page}/permissions/wipe", data={"csrf_token": token, "granted": "1"})
    assert 'value="wipe"' in client.get(page).text


def test_the_map_takes_its_tiles_from_the_settings_and_works_without(signed_in, settings):
    device_id, auth, _ = _enrolled(signed_in)
    signed_in.post(
        "/api/v1/agent/check-in",
        json={"locations": [{"latitude": 43.24, "longitude": 76.89, "accuracy_m": 12,
              "method": "gps", "fixed_at": "2026-01-01T00:00:00+00:00"}]},
        headers=auth,
    )  # fmt: skip
    # No tile server: the map still shows the points (on a plain background) and the table.
    page = signed_in.get(f"/devices/{device_id}").text
    assert 'data-tiles=""' in page and "43.24000, 76.89000" in page
    settings.map_tile_url = "https://tiles.example.kz/{z}/{x}/{y}.png"
    settings.map_attribution = "© Example tiles"
    page = signed_in.get(f"/devices/{device_id}").text
    assert 'data-tiles="https://tiles.example.kz/{z}/{x}/{y}.png"' in page
    assert 'data-attribution="© Example tiles"' in page
