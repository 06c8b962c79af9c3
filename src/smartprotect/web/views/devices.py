"""The dashboard: the user's devices, adding one, and where each has been."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from smartprotect.deps import ClockDep, DbSession, KeyringDep, SettingsDep
from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability
from smartprotect.devices.schemas import EnrollmentCodeCreate
from smartprotect.privacy.consent.purposes import TERMS
from smartprotect.validation import field_errors
from smartprotect.web.gates import SignedInUser
from smartprotect.web.templating import render
from smartprotect.web.views.forms import CheckedForm, checkbox

router = APIRouter()


def _dashboard(request, db, settings, keyring, user, *, code=None, values=None, errors=None,
               status_code=200):  # fmt: skip
    rows = []
    for device in devices.devices_of(session=db, user=user):
        latest = devices.locations(session=db, keyring=keyring, device=device, limit=1)
        rows.append({"device": device, "location": latest[0] if latest else None})
    return render(
        request,
        "devices/dashboard.html",
        settings=settings,
        user=user,
        context={
            "rows": rows,
            "capabilities": list(Capability),
            "capability_labels": {
                c: TERMS[devices.CAPABILITY_PURPOSE[c]].label for c in Capability
            },
            "code": code,
            "values": values or {"capabilities": ["locate", "ring", "lock"]},
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/devices")
def dashboard(
    request: Request, db: DbSession, settings: SettingsDep, keyring: KeyringDep,
    user: SignedInUser,
) -> Response:  # fmt: skip
    return _dashboard(request, db, settings, keyring, user)


@router.post("/devices/enrollment-codes")
def create_code(
    request: Request,
    form: CheckedForm,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
    user: SignedInUser,
) -> Response:
    chosen = [c.value for c in Capability if checkbox(form, f"capability_{c.value}")]
    values = {"device_name": form.get("device_name", ""), "capabilities": chosen}
    try:
        data = EnrollmentCodeCreate(device_name=form.get("device_name", ""), capabilities=chosen)
    except ValidationError as exc:
        return _dashboard(
            request, db, settings, keyring, user, values=values, errors=field_errors(exc),
            status_code=422,
        )  # fmt: skip
    _code, shown = devices.create_enrollment_code(
        session=db, keyring=keyring, user=user, device_name=data.device_name,
        capabilities=data.capabilities, clock=clock,
    )  # fmt: skip
    command = f"smartprotect agent enroll --server {settings.base_url} --code {shown}"
    if Capability.WIPE in data.capabilities:
        command += " --allow-wipe --wipe-path DIR"
    return _dashboard(
        request, db, settings, keyring, user, code={"code": shown, "command": command},
        values=values, status_code=201,
    )  # fmt: skip


@router.get("/devices/{device_id}")
def device_page(
    request: Request,
    device_id: uuid.UUID,
    db: DbSession,
    settings: SettingsDep,
    keyring: KeyringDep,
    user: SignedInUser,
) -> Response:
    device = devices.get_device(session=db, user=user, device_id=device_id)
    return render(
        request,
        "devices/device.html",
        settings=settings,
        user=user,
        context={
            "device": device,
            "locations": devices.locations(session=db, keyring=keyring, device=device),
            "accounts": devices.accounts_of(session=db, keyring=keyring, device=device),
            "capability_labels": {
                c: TERMS[devices.CAPABILITY_PURPOSE[c]].label for c in Capability
            },
        },
    )
