"""Commands: permissions, the wipe's safety checks, the state machine, signing."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from smartprotect.accounts.models import User
from smartprotect.accounts.service import create_user
from smartprotect.audit.models import AuditEvent
from smartprotect.commands import service as commands
from smartprotect.commands.models import REDELIVER_AFTER, Command, Kind, State
from smartprotect.devices import service as devices
from smartprotect.devices.models import Capability
from smartprotect.devices.schemas import CheckIn, EnrollRequest
from smartprotect.errors import Conflict, PermissionDenied, ValidationFailed
from smartprotect.mail.links import Links
from smartprotect.security import hash_password
from tests.helpers import blocked

PASSWORD = "owner's long password"
LINKS = Links(base_url="https://smprotect.com")


@pytest.fixture
def owner(db, clock, keyring, published_policy) -> User:
    user = create_user(
        session=db, keyring=keyring, clock=clock,
        email="owner@example.kz", phone="+77010000001", password_hash=hash_password(PASSWORD),
        language="en", created_at=clock.now(), password_changed_at=clock.now(),
        email_verified_at=clock.now(),
    )  # fmt: skip
    return user


@pytest.fixture
def device(db, clock, keyring, owner):
    _, code = devices.create_enrollment_code(
        session=db, keyring=keyring, user=owner, device_name="Laptop", clock=clock,
        capabilities=[Capability.LOCATE, Capability.RING, Capability.LOCK, Capability.WIPE],
    )  # fmt: skip
    device, _ = devices.enroll(
        session=db, keyring=keyring, clock=clock,
        request=EnrollRequest(code=code, platform="linux"),
    )  # fmt: skip
    return device


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


def _report(db, keyring, device, command_id, state, result, clock):
    return commands.report(
        session=db, keyring=keyring, device=device, command_id=command_id, state=state,
        result=result, clock=clock, links=LINKS,
    )  # fmt: skip


def _issue(db, keyring, owner, device, clock, kind, **extra):
    return commands.issue(
        session=db, keyring=keyring, user=owner, device=device, kind=kind, clock=clock,
        links=LINKS, **extra,
    )  # fmt: skip


def test_delivery_signs_each_command_for_its_device(db, clock, keyring, owner, device, key):
    lock = _issue(db, keyring, owner, device, clock, Kind.LOCK, message="Reward!", phone="+7 701")
    assert b"Reward" not in lock.sealed_params  # the owner's words are sealed
    delivered = commands.deliver(
        session=db, keyring=keyring, device=device, key=key, clock=clock, links=LINKS
    )
    assert len(delivered) == 1 and lock.state is State.DELIVERED
    payload = {k: delivered[0][k] for k in ("device_id", "command_id", "kind", "params",
                                             "expires_at")}  # fmt: skip
    key.public_key().verify(
        base64.b64decode(delivered[0]["signature"]), commands.canonical(payload)
    )
    assert payload["params"] == {"message": "Reward!", "phone": "+7 701"}
    assert payload["device_id"] == str(device.id)
    # Delivered once: the next check-in brings nothing new.
    assert (
        commands.deliver(
            session=db, keyring=keyring, device=device, key=key, clock=clock, links=LINKS
        )
        == []
    )


def test_the_state_machine_is_explicit_and_time_stamped(db, clock, keyring, owner, device, key):
    ring = _issue(db, keyring, owner, device, clock, Kind.RING)
    clock.advance(timedelta(seconds=5))
    commands.deliver(session=db, keyring=keyring, device=device, key=key, clock=clock, links=LINKS)
    clock.advance(timedelta(seconds=1))
    _report(db, keyring, device, ring.id, State.RUNNING, None, clock)
    clock.advance(timedelta(seconds=1))
    _report(db, keyring, device, ring.id, State.SUCCEEDED, {"ok": True}, clock)
    assert (ring.delivered_at - ring.issued_at, ring.started_at - ring.delivered_at) == (
        timedelta(seconds=5),
        timedelta(seconds=1),
    )
    assert ring.state is State.SUCCEEDED and ring.finished_at == clock.now()
    # Going back is refused; reporting the same state again is harmless.
    _report(db, keyring, device, ring.id, State.SUCCEEDED, {"ok": True}, clock)
    with pytest.raises(Conflict):
        _report(db, keyring, device, ring.id, State.RUNNING, None, clock)
    tags = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.action.like("device:command:%"))
        .order_by(AuditEvent.seq)
    ).all()
    assert tags == ["device:command:issue", "device:command:deliver", "device:command:state",
                    "device:command:state"]  # fmt: skip


def test_a_wipe_needs_the_password_and_the_devices_name(db, clock, keyring, owner, device):
    with pytest.raises(ValidationFailed) as error:
        _issue(db, keyring, owner, device, clock, Kind.WIPE, password="nope", confirm_name="laptop")
    assert set(error.value.errors) == {"password", "confirm_name"}
    wipe = _issue(db, keyring, owner, device, clock, Kind.WIPE, password=PASSWORD,
                  confirm_name="Laptop")  # fmt: skip
    assert wipe.state is State.QUEUED
    # At most one destructive command pending per device.
    with pytest.raises(Conflict):
        _issue(db, keyring, owner, device, clock, Kind.WIPE, password=PASSWORD,
               confirm_name="Laptop")  # fmt: skip


def test_a_wipe_can_be_cancelled_until_fetched(db, clock, keyring, owner, device, key):
    wipe = _issue(db, keyring, owner, device, clock, Kind.WIPE, password=PASSWORD,
                  confirm_name="Laptop")  # fmt: skip
    commands.cancel(session=db, keyring=keyring, user=owner, command=wipe, clock=clock)
    assert wipe.state is State.CANCELLED
    assert (
        commands.deliver(
            session=db, keyring=keyring, device=device, key=key, clock=clock, links=LINKS
        )
        == []
    )
    second = _issue(db, keyring, owner, device, clock, Kind.WIPE, password=PASSWORD,
                    confirm_name="Laptop")  # fmt: skip
    commands.deliver(session=db, keyring=keyring, device=device, key=key, clock=clock, links=LINKS)
    with pytest.raises(Conflict):
        commands.cancel(session=db, keyring=keyring, user=owner, command=second, clock=clock)


def _while_held(engine, session_factory, holder, work):
    """`work(session)` in a session and thread of its own while `holder` (another session)
    holds its locks, which it then commits: what `work` returned or raised."""
    outcome: list = []

    def run() -> None:
        with session_factory() as session:
            try:
                outcome.append(work(session))
                session.commit()
            except Exception as exc:  # handed to the test
                outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    # Until the thread waits for the holder: PostgreSQL says so; SQLite's one write lock
    # makes any order safe, so a moment is enough.
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            assert blocked(connection, thread), "it never waited"
    else:
        thread.join(0.3)
    holder.commit()
    holder.close()
    thread.join(30)
    [result] = outcome
    return result


def test_a_wipe_fetched_while_being_cancelled_is_not_cancelled(
    db, engine, session_factory, clock, keyring, owner, device, key
):
    wipe = _issue(db, keyring, owner, device, clock, Kind.WIPE, password=PASSWORD,
                  confirm_name="Laptop")  # fmt: skip
    db.commit()
    fetching = session_factory()
    delivered = commands.deliver(session=fetching, keyring=keyring, device=fetching.get(
        type(device), device.id), key=key, clock=clock, links=LINKS)  # fmt: skip
    assert [c["command_id"] for c in delivered] == [str(wipe.id)]

    def cancel(session):
        mine = session.get(type(device), device.id)
        command = commands.get_command(session=session, device=mine, command_id=wipe.id)
        return commands.cancel(session=session, keyring=keyring, command=command, clock=clock,
                               user=session.get(User, owner.id))  # fmt: skip

    refused = _while_held(engine, session_factory, fetching, cancel)
    assert isinstance(refused, Conflict)
    db.expire_all()
    assert db.get(type(wipe), wipe.id).state is State.DELIVERED


def test_two_wipes_issued_at_once_queue_only_one(
    db, engine, session_factory, clock, keyring, owner, device
):
    db.commit()
    first = session_factory()
    _issue(first, keyring, first.get(User, owner.id), first.get(type(device), device.id), clock,
           Kind.WIPE, password=PASSWORD, confirm_name="Laptop")  # fmt: skip

    def second(session):
        return _issue(session, keyring, session.get(User, owner.id),
                      session.get(type(device), device.id), clock, Kind.WIPE,
                      password=PASSWORD, confirm_name="Laptop")  # fmt: skip

    refused = _while_held(engine, session_factory, first, second)
    assert isinstance(refused, Conflict)
    db.expire_all()
    wipes = db.scalars(select(Command).where(Command.kind == Kind.WIPE)).all()
    assert [w.state for w in wipes] == [State.QUEUED]


def test_a_wiped_device_is_terminal(db, clock, keyring, owner, device, key):
    wipe = _issue(db, keyring, owner, device, clock, Kind.WIPE, password=PASSWORD,
                  confirm_name="Laptop")  # fmt: skip
    commands.deliver(session=db, keyring=keyring, device=device, key=key, clock=clock, links=LINKS)
    _report(db, keyring, device, wipe.id, State.SUCCEEDED, {"files_removed": 3}, clock)
    assert device.revoked_at == clock.now()
    with pytest.raises(Conflict):
        _issue(db, keyring, owner, device, clock, Kind.RING)


def test_commands_for_an_offline_device_wait_then_expire(db, clock, keyring, owner, device, key):
    ring = _issue(db, keyring, owner, device, clock, Kind.RING)
    clock.advance(commands.COMMAND_TTL - timedelta(minutes=1))
    assert (
        len(
            commands.deliver(
                session=db, keyring=keyring, device=device, key=key, clock=clock, links=LINKS
            )
        )
        == 1
    )
    late = _issue(db, keyring, owner, device, clock, Kind.LOCATE)
    clock.advance(commands.COMMAND_TTL)
    assert (
        commands.deliver(
            session=db, keyring=keyring, device=device, key=key, clock=clock, links=LINKS
        )
        == []
    )
    assert late.state is State.EXPIRED and ring.state is State.EXPIRED


def test_unpermitted_and_other_users_commands_are_refused(db, clock, keyring, owner, device):
    from smartprotect.privacy.consent import service as consent
    from smartprotect.privacy.consent.models import Channel, ConsentAction, ConsentEvent, Purpose

    stranger = create_user(
        session=db, keyring=keyring, clock=clock,
        email="s@example.kz", phone="+77010000002", password_hash="x", language="en",
        created_at=clock.now(), password_changed_at=clock.now(),
    )  # fmt: skip
    with pytest.raises(PermissionDenied):
        _issue(db, keyring, stranger, device, clock, Kind.RING)
    # The owner turns remote wipe off for this device: wipes are refused from then on.
    consent.record(
        session=db, keyring=keyring, subject_id=owner.id, purpose=Purpose.DEVICE_WIPE,
        action=ConsentAction.WITHDRAW,
        policy_document_id=db.scalar(select(ConsentEvent.policy_document_id)),
        channel=Channel.WEB, actor="user:owner", clock=clock, scope=devices.scope_of(device.id),
    )  # fmt: skip
    with pytest.raises(PermissionDenied):
        _issue(db, keyring, owner, device, clock, Kind.WIPE, password=PASSWORD,
               confirm_name="Laptop")  # fmt: skip


def test_a_delivered_command_without_a_report_is_handed_out_again(
    db, clock, keyring, owner, device, key
):
    wipe = _issue(db, keyring, owner, device, clock, Kind.WIPE, password=PASSWORD,
                  confirm_name="Laptop")  # fmt: skip

    def deliver():
        return commands.deliver(session=db, keyring=keyring, device=device, key=key, clock=clock,
                                links=LINKS)  # fmt: skip

    first = deliver()
    assert [c["command_id"] for c in first] == [str(wipe.id)]
    clock.advance(REDELIVER_AFTER - timedelta(seconds=1))
    assert deliver() == []  # not at every poll: the device may be running it right now
    clock.advance(timedelta(seconds=1))
    # The answer that carried it may have been lost: the same signed command again (the
    # device runs a command id once only), still delivered, not cancellable.
    again = deliver()
    assert again == first and wipe.state is State.DELIVERED
    assert wipe.delivered_at == clock.now() - REDELIVER_AFTER
    with pytest.raises(Conflict):
        commands.cancel(session=db, keyring=keyring, user=owner, command=wipe, clock=clock)
    delivered = db.scalars(select(AuditEvent.details).where(
        AuditEvent.action == "device:command:deliver").order_by(AuditEvent.seq)).all()  # fmt: skip
    assert [d.get("again") for d in delivered] == [None, True]
    # Once the device reports, it is not handed out again.
    _report(db, keyring, device, wipe.id, State.RUNNING, {"committed": True}, clock)
    clock.advance(REDELIVER_AFTER * 2)
    assert deliver() == []


def test_a_check_in_picks_up_a_command_to_hand_out_again(db, clock, keyring, owner, device, key):
    ring = _issue(db, keyring, owner, device, clock, Kind.RING)
    commands.deliver(session=db, keyring=keyring, device=device, key=key, clock=clock,
                     links=LINKS)  # fmt: skip
    report = devices.Report(credential_hash=device.credential_hash, report=CheckIn())

    def follow_up() -> bool:
        [outcome] = devices.check_in_many(session=db, keyring=keyring, reports=[report],
                                          clock=clock)  # fmt: skip
        return outcome.needs_follow_up

    assert not follow_up()
    clock.advance(REDELIVER_AFTER)
    assert follow_up()
    _report(db, keyring, device, ring.id, State.SUCCEEDED, {"ok": True}, clock)
    clock.advance(REDELIVER_AFTER)
    assert not follow_up()


def test_the_history_shows_and_audits_commands_that_ran_out_of_time(
    db, clock, keyring, owner, device
):
    ring = _issue(db, keyring, owner, device, clock, Kind.RING)
    clock.advance(commands.COMMAND_TTL)
    # The device never came back; the owner still sees the command end.
    [shown] = commands.history(session=db, keyring=keyring, device=device, clock=clock)
    assert shown.id == ring.id and shown.state is State.EXPIRED
    assert shown.finished_at == clock.now()
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "device:command:state")
                       .order_by(AuditEvent.seq.desc())).first()  # fmt: skip
    assert event.details["state"] == "expired" and event.actor == "server"


def test_a_device_cannot_report_on_another_devices_command(db, clock, keyring, owner, device, key):
    _, code = devices.create_enrollment_code(
        session=db, keyring=keyring, user=owner, device_name="Phone", clock=clock,
        capabilities=[Capability.RING],
    )  # fmt: skip
    other, _ = devices.enroll(
        session=db, keyring=keyring, clock=clock,
        request=EnrollRequest(code=code, platform="linux"),
    )  # fmt: skip
    ring = _issue(db, keyring, owner, device, clock, Kind.RING)
    commands.deliver(session=db, keyring=keyring, device=device, key=key, clock=clock, links=LINKS)
    with pytest.raises(PermissionDenied):
        _report(db, keyring, other, ring.id, State.SUCCEEDED, None, clock)
    assert ring.state is State.DELIVERED and ring.finished_at is None


def test_a_command_issued_while_a_wipe_completes_is_refused(
    db, engine, session_factory, clock, keyring, owner, device, key
):
    wipe = _issue(db, keyring, owner, device, clock, Kind.WIPE, password=PASSWORD,
                  confirm_name="Laptop")  # fmt: skip
    commands.deliver(session=db, keyring=keyring, device=device, key=key, clock=clock, links=LINKS)
    db.commit()
    reporting = session_factory()
    _report(reporting, keyring, reporting.get(type(device), device.id), wipe.id, State.SUCCEEDED,
            {"files_removed": 1}, clock)  # fmt: skip

    def ring(session):
        return _issue(session, keyring, session.get(User, owner.id),
                      session.get(type(device), device.id), clock, Kind.RING)  # fmt: skip

    refused = _while_held(engine, session_factory, reporting, ring)
    assert isinstance(refused, Conflict)
    db.expire_all()
    assert db.scalars(select(Command.kind)).all() == [Kind.WIPE]
