"""FMD phones' uploads and polls arriving together are answered from one transaction; a
refused call changes nothing and fails no other; a command is read once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from smartprotect.db import make_async_engine, make_gate
from smartprotect.devices.models import Device
from smartprotect.fmd import service as fmd
from smartprotect.fmd.group_commit import PhoneCallWriter
from smartprotect.fmd.models import FmdAccount, FmdItem, ItemKind
from smartprotect.group_commit import MAX_BATCH, POSTGRES_WRITERS
from smartprotect.security import hash_token
from tests.api.test_fmd_v1 import _code, _register

PHONES = 6


@pytest.fixture
def tokens(client, db, clock, keyring, published_policy) -> list[str]:
    """PHONES phones registered as the app does, each logged in."""
    from tests.helpers import add_owner

    owner = add_owner(db, clock=clock, keyring=keyring)
    db.commit()
    phone = _phone()
    made = []
    for n in range(PHONES):
        assert _register(client, phone, _code(db, keyring, clock, owner),
                         username=f"phone{n}").status_code == 200  # fmt: skip
        token, _ = fmd.log_in(session=db, keyring=keyring, clock=clock, username=f"phone{n}",
                              client_hash=phone.login_hash, seconds=3600)  # fmt: skip
        made.append(token)
    db.commit()
    return made


def _phone():
    from tests.api.test_fmd_v1 import Phone

    return Phone()


@pytest.fixture
def writer(engine, session_factory, keyring, clock):
    async_engine = (
        make_async_engine(engine, pool_size=POSTGRES_WRITERS)
        if engine.dialect.name == "postgresql" else None
    )  # fmt: skip
    yield PhoneCallWriter(session_factory=session_factory, gate=make_gate(engine),
                          keyring=keyring, clock=clock, after_commit=lambda _session: None,
                          async_engine=async_engine)  # fmt: skip
    if async_engine is not None:
        asyncio.run(async_engine.dispose())


def _commits(writer, engine) -> list[int]:
    target = writer._async_engine.sync_engine if writer._async_engine is not None else engine
    commits: list[int] = []
    event.listen(target, "commit", lambda _connection: commits.append(1))
    return commits


def test_uploads_and_polls_together_share_one_transaction(writer, engine, db, tokens, clock):
    account = db.scalar(select(FmdAccount).where(FmdAccount.username == "phone0"))
    fmd.set_command(account=account, command=fmd.Command("ring", 1795700000000, "c2ln"))
    db.commit()
    commits = _commits(writer, engine)
    calls = [fmd.PhoneCall(hash_token(token), blob=f"blob{n}") for n, token in enumerate(tokens)]
    calls += [fmd.PhoneCall(hash_token(tokens[0])), fmd.PhoneCall(hash_token(tokens[0])),
              fmd.PhoneCall(hash_token("not a token"), blob="x")]  # fmt: skip

    async def together():
        return await asyncio.gather(
            *(writer.submit(call) for call in calls), return_exceptions=True
        )

    outcomes = asyncio.run(together())
    assert outcomes[:PHONES] == [None] * PHONES
    # The command is read once: the second poll of the same phone finds the slot empty.
    assert outcomes[PHONES] == fmd.Command("ring", 1795700000000, "c2ln")
    assert outcomes[PHONES + 1] == fmd.Command("", 0, "")
    assert isinstance(outcomes[-1], fmd.FmdError) and outcomes[-1].status_code == 401
    assert len(commits) <= 2  # the first call's batch, then everything that waited for it
    db.expire_all()
    stored = db.scalars(select(FmdItem.data).where(FmdItem.kind == ItemKind.LOCATION)).all()
    assert sorted(stored) == sorted(fmd.stored_location(f"blob{n}") for n in range(PHONES))
    assert db.scalar(select(FmdAccount.command).where(FmdAccount.username == "phone0")) is None
    assert all(seen == clock.now() for seen in db.scalars(select(Device.last_seen_at)))


def test_a_phone_keeps_its_newest_500_locations(writer, db, tokens):
    token = hash_token(tokens[0])

    async def upload(count: int):
        return await asyncio.gather(
            *(writer.submit(fmd.PhoneCall(token, blob=f"fix{n}")) for n in range(count))
        )

    kept, slack = fmd.KEPT[ItemKind.LOCATION], fmd.PRUNE_SLACK
    asyncio.run(upload(kept + slack))
    assert db.scalar(select(func.count()).select_from(FmdItem)) == kept + slack
    # Past the slack, trimmed back to the newest 500. On PostgreSQL two batches may commit
    # side by side, neither seeing the other's rows: a later upload trims what they left.
    asyncio.run(upload(20))
    left = db.scalar(select(func.count()).select_from(FmdItem))
    assert kept <= left <= kept + slack + MAX_BATCH
    asyncio.run(upload(1))
    assert kept <= db.scalar(select(func.count()).select_from(FmdItem)) <= kept + slack
    newest = db.scalars(
        select(FmdItem.data).order_by(FmdItem.uploaded_at.desc(), FmdItem.id.desc()).limit(1)
    ).one()
    assert newest == fmd.stored_location("fix0")


def test_polls_write_nothing_while_the_phone_was_seen_within_the_minute(
    writer, engine, db, tokens, clock
):
    asyncio.run(writer.submit(fmd.PhoneCall(hash_token(tokens[0]))))
    first = db.scalar(select(Device.last_seen_at).where(Device.last_seen_at.is_not(None)))
    clock.advance(timedelta(seconds=30))
    asyncio.run(writer.submit(fmd.PhoneCall(hash_token(tokens[0]))))
    db.expire_all()
    assert db.scalar(select(Device.last_seen_at).where(Device.last_seen_at.is_not(None))) == first
    clock.advance(timedelta(seconds=31))
    asyncio.run(writer.submit(fmd.PhoneCall(hash_token(tokens[0]))))
    db.expire_all()
    assert db.scalar(select(func.max(Device.last_seen_at))) == clock.now()


def test_a_command_is_handed_out_once_when_two_batches_poll_at_once(
    tokens, session_factory, clock, db
):
    """PostgreSQL runs two batches side by side: the second poll waits for the first's lock
    on the slot, then finds it empty (SQLite's one writer serialises them anyway)."""
    import threading

    account = db.scalar(select(FmdAccount).where(FmdAccount.username == "phone0"))
    fmd.set_command(account=account, command=fmd.Command("ring", 1795700000000, "c2ln"))
    db.commit()
    first, second = session_factory(), session_factory()
    if first.get_bind().dialect.name != "postgresql":
        pytest.skip("only PostgreSQL runs two batches at once")
    call = fmd.PhoneCall(hash_token(tokens[0]))
    seen: dict = {}

    def second_batch():
        seen["second"] = fmd.serve_many(session=second, clock=clock, calls=[call])
        second.commit()

    def before(_connection, _cursor, statement, *_args):
        if statement.startswith("UPDATE fmd_accounts") and "thread" not in seen:
            # The first batch has read the slot; the second polls now.
            seen["thread"] = threading.Thread(target=second_batch)
            seen["thread"].start()
            seen["thread"].join(timeout=1)
            seen["second_waited"] = seen["thread"].is_alive()

    connection = first.connection()
    event.listen(connection, "before_cursor_execute", before)
    outcome = fmd.serve_many(session=first, clock=clock, calls=[call])
    first.commit()
    seen["thread"].join(timeout=10)
    assert outcome == [fmd.Command("ring", 1795700000000, "c2ln")]
    assert seen["second_waited"] and seen["second"] == [fmd.Command("", 0, "")]


def test_uploads_are_dropped_while_the_owner_does_not_let_the_phone_locate(
    writer, db, tokens, keyring, clock
):
    from smartprotect.devices import service as devices
    from smartprotect.privacy.consent import service as consent
    from smartprotect.privacy.consent.models import (
        Channel,
        ConsentAction,
        ConsentEvent,
        Purpose,
    )

    # Allowed at first: the writer learns so, and keeps it while nothing changes.
    first = fmd.PhoneCall(hash_token(tokens[0]), blob="before")
    assert asyncio.run(writer.submit(first)) is None
    device_id = db.scalar(select(FmdAccount.device_id).where(FmdAccount.username == "phone0"))
    owner = db.scalar(select(Device.user_id).where(Device.id == device_id))
    consent.record(
        session=db, keyring=keyring, subject_id=owner, purpose=Purpose.DEVICE_LOCATE,
        action=ConsentAction.WITHDRAW,
        policy_document_id=db.scalar(select(ConsentEvent.policy_document_id).limit(1)),
        channel=Channel.WEB, actor="user:test", clock=clock, scope=devices.scope_of(device_id),
    )  # fmt: skip
    db.commit()

    async def upload():
        return await asyncio.gather(
            writer.submit(fmd.PhoneCall(hash_token(tokens[0]), blob="withdrawn")),
            writer.submit(fmd.PhoneCall(hash_token(tokens[1]), blob="allowed")),
        )

    assert asyncio.run(upload()) == [None, None]  # the app is answered as usual
    stored = db.scalars(select(FmdItem.data)).all()
    assert sorted(stored) == sorted([fmd.stored_location("before"), fmd.stored_location("allowed")])


def test_an_account_of_nobody_is_served_in_the_same_batch_as_devices(
    writer, db, tokens, keyring, clock
):
    # Open registration (`fmd.OpenRegistration`): an account with no device.
    phone = _phone()
    fmd.register(session=db, keyring=keyring, clock=clock, registration_token="",
                 requested_username="nobodys", hashed_password=phone.login_hash,
                 public_key=phone.public, private_key=phone.wrapped,
                 open_registration=fmd.OpenRegistration())  # fmt: skip
    token, account = fmd.log_in(session=db, keyring=keyring, clock=clock, username="nobodys",
                                client_hash=phone.login_hash, seconds=3600)  # fmt: skip
    fmd.set_command(account=account, command=fmd.Command("locate", 1795700000000, "c2ln"))
    db.commit()
    calls = [fmd.PhoneCall(hash_token(token), blob="open-fix"), fmd.PhoneCall(hash_token(token)),
             fmd.PhoneCall(hash_token(tokens[1]), blob="owned-fix")]  # fmt: skip

    async def together():
        return await asyncio.gather(*(writer.submit(call) for call in calls))

    outcomes = asyncio.run(together())
    assert outcomes == [None, fmd.Command("locate", 1795700000000, "c2ln"), None]
    db.expire_all()
    stored = db.execute(select(FmdAccount.username, FmdItem.data).join(FmdItem)).all()
    assert sorted(stored) == [("nobodys", fmd.stored_location("open-fix")),
                              ("phone1", fmd.stored_location("owned-fix"))]  # fmt: skip
    assert db.scalar(select(FmdAccount.command).where(FmdAccount.username == "nobodys")) is None
