"""The dashboard: the user's devices, adding one, and where each has been."""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy import select
from starlette.responses import Response

from smartprotect.commands import service as commands
from smartprotect.commands.models import Kind
from smartprotect.commands.service import KIND_LABELS, STATE_LABELS
from smartprotect.deps import ClockDep, DbSession, KeyringDep, SettingsDep
from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability
from smartprotect.devices.schemas import EnrollmentCodeCreate
from smartprotect.errors import ValidationFailed, rollback_unless_kept
from smartprotect.fmd import service as fmd_service
from smartprotect.fmd.models import FmdAccount
from smartprotect.i18n import N_
from smartprotect.mail.links import Links
from smartprotect.privacy.consent.purposes import TERMS
from smartprotect.validation import field_errors
from smartprotect.web.gates import SignedInUser
from smartprotect.web.templating import render
from smartprotect.web.views.forms import CheckedForm, checkbox, redirect

router = APIRouter()


def _dashboard(request, db, settings, keyring, user, *, code=None, values=None, errors=None,
               status_code=200):  # fmt: skip
    values = {"capabilities": ["locate", "ring", "lock"],
              "link_capabilities": ["locate", "ring", "lock"]} | (values or {})  # fmt: skip
    rows = []
    for device in devices.devices_of(session=db, user=user):
        latest = devices.locations(session=db, keyring=keyring, device=device, limit=1)
        # A phone with the FMD app: its locations are opened in the browser (fmd.js).
        fmd_phone = device.platform == fmd_service.PLATFORM
        rows.append({"device": device, "location": latest[0] if latest else None,
                     "fmd": fmd_phone})  # fmt: skip
    return render(
        request,
        "devices/dashboard.html",
        settings=settings,
        user=user,
        context={
            "rows": rows,
            "fmd_phones": any(row["fmd"] and not row["device"].revoked_at for row in rows),
            "capabilities": list(Capability),
            "capability_labels": {
                c: TERMS[devices.CAPABILITY_PURPOSE[c]].label for c in Capability
            },
            "code": code,
            "map_points": json.dumps(
                [
                    _point(row["location"], row["device"].name)
                    for row in rows
                    if row["location"] is not None
                ]
            ),
            "map_tiles": settings.map_tile_url or "",
            "map_attribution": settings.map_attribution,
            "values": values,
            "errors": errors or {},
            # Phones registered openly (no code) can be linked to an account here.
            "fmd_linking": settings.fmd_open_registration,
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
    values, data, errors = _device_choices(form)
    if errors:
        return _dashboard(request, db, settings, keyring, user, values=values, errors=errors,
                          status_code=422)  # fmt: skip
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


def _device_choices(form: dict[str, str], prefix: str = ""):
    """A new device's name and permissions from a form whose fields start with `prefix`:
    what to show again, the validated choice (or None), and the errors by field."""
    chosen = [c.value for c in Capability if checkbox(form, f"{prefix}capability_{c.value}")]
    name = form.get(f"{prefix}device_name", "")
    values = {f"{prefix}device_name": name, f"{prefix}capabilities": chosen}
    try:
        return values, EnrollmentCodeCreate(device_name=name, capabilities=chosen), {}
    except ValidationError as exc:
        return values, None, {prefix + key: message for key, message in field_errors(exc).items()}


@router.post("/devices/fmd-links")
def link_fmd_phone(
    request: Request,
    form: CheckedForm,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
    user: SignedInUser,
) -> Response:
    """Link an FMD account registered openly (no enrollment code) as a device of the user;
    the browser logged in to it with its password and sends only the access token."""
    values, data, errors = _device_choices(form, prefix="link_")
    values["fmd_id"] = form.get("fmd_id", "")
    token = form.get("fmd_token", "")
    if not token:
        errors["fmd_id"] = fmd_service.LINK_FAILED
    if not errors:
        try:
            device = fmd_service.link(
                session=db, keyring=keyring, clock=clock, user=user, token=token,
                device_name=data.device_name, capabilities=data.capabilities,
            )  # fmt: skip
        except ValidationFailed as exc:
            rollback_unless_kept(db, exc)
            errors = exc.errors
        else:
            return redirect(request, f"/devices/{device.id}")
    return _dashboard(request, db, settings, keyring, user, values=values, errors=errors,
                      status_code=422)  # fmt: skip


def _device_context(db, keyring, device, clock) -> dict:
    scope = devices.scope_of(device.id)
    return {
        "device": device,
        "locations": devices.locations(session=db, keyring=keyring, device=device),
        "accounts": devices.accounts_of(session=db, keyring=keyring, device=device),
        "capability_labels": {c: TERMS[devices.CAPABILITY_PURPOSE[c]].label for c in Capability},
        "permitted": {c: devices.may(session=db, device=device, capability=c) for c in Capability},
        "enrolled_with": set(device.capabilities),
        "scope": scope,
        "commands": commands.history(session=db, keyring=keyring, device=device, clock=clock),
        "kinds": Kind,
        "state_labels": STATE_LABELS,
        "kind_labels": KIND_LABELS,
        # A phone with the FMD app: its data is opened in the browser (views/fmd.py).
        "fmd": db.scalar(select(FmdAccount).where(FmdAccount.device_id == device.id)),
    }


def _point(location, label: str) -> dict:
    return {
        "lat": location.latitude,
        "lon": location.longitude,
        "accuracy": location.accuracy_m,
        "label": f"{label} · {location.fixed_at:%Y-%m-%d %H:%M} UTC · ± "
        f"{round(location.accuracy_m)} m · {location.method.value}",
    }


def _device_page(request, db, settings, keyring, user, device, *, errors=None, values=None,
                 status_code=200):  # fmt: skip
    context = _device_context(db, keyring, device, request.app.state.clock)
    context.update(
        errors=errors or {},
        values=values or {},
        map_points=json.dumps([_point(p, device.name) for p in context["locations"][:200]]),
        map_tiles=settings.map_tile_url or "",
        map_attribution=settings.map_attribution,
    )
    return render(
        request, "devices/device.html", settings=settings, user=user, context=context,
        status_code=status_code,
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
    return _device_page(request, db, settings, keyring, user, device)


@router.get("/devices/{device_id}/commands")
def commands_fragment(
    request: Request,
    device_id: uuid.UUID,
    db: DbSession,
    settings: SettingsDep,
    keyring: KeyringDep,
    user: SignedInUser,
) -> Response:
    """The command list alone, which the page polls to show states as they change."""
    device = devices.get_device(session=db, user=user, device_id=device_id)
    return render(
        request, "devices/_commands.html", settings=settings, user=user,
        context=_device_context(db, keyring, device, request.app.state.clock),
    )  # fmt: skip


@router.post("/devices/{device_id}/commands")
def issue_command(
    request: Request,
    device_id: uuid.UUID,
    form: CheckedForm,
    db: DbSession,
    settings: SettingsDep,
    clock: ClockDep,
    keyring: KeyringDep,
    user: SignedInUser,
) -> Response:
    device = devices.get_device(session=db, user=user, device_id=device_id)
    try:
        kind = Kind(form.get("kind", ""))
    except ValueError:
        raise ValidationFailed({"kind": N_("This value is not valid.")}) from None
    try:
        commands.issue(
            session=db, keyring=keyring, user=user, device=device, kind=kind, clock=clock,
            links=Links(base_url=settings.base_url), message=form.get("message"),
            phone=form.get("phone"), password=form.get("password"),
            confirm_name=form.get("confirm_name"),
        )  # fmt: skip
    except ValidationFailed as exc:
        rollback_unless_kept(db, exc)
        values = {"message": form.get("message", ""), "phone": form.get("phone", "")}
        return _device_page(
            request, db, settings, keyring, user, device, errors=exc.errors, values=values,
            status_code=422,
        )  # fmt: skip
    return redirect(request, f"/devices/{device.id}")


@router.post("/devices/{device_id}/commands/{command_id}/cancel")
def cancel_command(
    request: Request,
    device_id: uuid.UUID,
    command_id: uuid.UUID,
    form: CheckedForm,
    db: DbSession,
    clock: ClockDep,
    keyring: KeyringDep,
    user: SignedInUser,
) -> Response:
    device = devices.get_device(session=db, user=user, device_id=device_id)
    command = commands.get_command(session=db, device=device, command_id=command_id)
    commands.cancel(session=db, keyring=keyring, user=user, command=command, clock=clock)
    return redirect(request, f"/devices/{device.id}")


@router.post("/devices/{device_id}/lost")
def mark_lost(
    request: Request,
    device_id: uuid.UUID,
    form: CheckedForm,
    db: DbSession,
    clock: ClockDep,
    keyring: KeyringDep,
    user: SignedInUser,
) -> Response:
    device = devices.get_device(session=db, user=user, device_id=device_id)
    devices.set_lost(
        session=db, keyring=keyring, user=user, device=device, lost=form.get("lost") == "1",
        clock=clock,
    )  # fmt: skip
    return redirect(request, f"/devices/{device.id}")


@router.post("/devices/{device_id}/permissions/{capability}")
def change_permission(
    request: Request,
    device_id: uuid.UUID,
    capability: Capability,
    form: CheckedForm,
    db: DbSession,
    clock: ClockDep,
    keyring: KeyringDep,
    user: SignedInUser,
) -> Response:
    device = devices.get_device(session=db, user=user, device_id=device_id)
    devices.set_permission(
        session=db, keyring=keyring, user=user, device=device, capability=capability,
        granted=form.get("granted") == "1", clock=clock,
    )  # fmt: skip
    return redirect(request, f"/devices/{device.id}")
