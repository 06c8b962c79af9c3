"""The server runs the retention job by itself, on a schedule."""

from __future__ import annotations

import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from smartprotect.app import create_app
from smartprotect.audit.models import AuditEvent
from smartprotect.audit.tags import Tag
from smartprotect.devices.models import DeviceLocation
from tests.helpers import add_device, add_owner, report_fix


def test_the_server_destroys_old_data_on_its_own(
    db, settings, engine, clock, keyring, published_policy
):
    owner = add_owner(db, clock=clock, keyring=keyring)
    phone = add_device(db, keyring=keyring, clock=clock, owner=owner)
    report_fix(db, keyring=keyring, clock=clock, device=phone)
    db.commit()
    clock.advance(timedelta(days=366))
    app = create_app(
        settings.model_copy(update={"retention_interval_seconds": 1}),
        clock=clock, engine=engine, keyring=keyring,
    )  # fmt: skip
    with TestClient(app):  # runs the lifespan, and so the scheduler
        deadline = time.monotonic() + 20
        while app.state.retention.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert app.state.retention.runs >= 2  # it keeps running, every interval
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(DeviceLocation)) == 0
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == Tag.RETENTION_RUN)).first()
    assert event.actor == "system"
