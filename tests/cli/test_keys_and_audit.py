"""`smartprotect keys` and `smartprotect audit` as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from smartprotect.audit import service as audit
from smartprotect.audit.tags import Tag
from smartprotect.db import unit_of_work
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.keys.master import LocalMasterKey, decode_key, encode_key
from tests.cli.test_cli import _invoke
from tests.conftest import TEST_MASTER_KEY, TEST_SECRET


def _env(database_url, tmp_path, **extra):
    return {
        "SMARTPROTECT_DATABASE_URL": database_url,
        "SMARTPROTECT_ENV": "production",
        # The tests' own secret: addresses are found by blind indexes made with it.
        "SMARTPROTECT_SECRET_KEY": TEST_SECRET,
        "SMARTPROTECT_MASTER_KEY": encode_key(TEST_MASTER_KEY),
        "SMARTPROTECT_VAR_DIR": str(tmp_path / "var"),
        **extra,
    }


def _events(session_factory, clock, keyring, count=4):
    subject = uuid.uuid4()
    with unit_of_work(session_factory) as session:
        keys.create_key(session=session, master=keyring.master, subject_id=subject, clock=clock)
        for _ in range(count):
            audit.record_event(
                session=session, clock=clock, action=Tag.ACCOUNT_LOGIN, actor="system",
                secret=keyring.secret, subject_id=subject,
            )  # fmt: skip
    return subject


def test_keys_generate_prints_a_usable_key(tmp_path):
    result = _invoke(["keys", "generate"], {})
    assert len(decode_key(result.output, source="output")) == 32


def test_keys_rotate_rewraps_under_the_new_key(
    database_url, engine, session_factory, clock, keyring, tmp_path
):
    subject = _events(session_factory, clock, keyring, count=1)
    with unit_of_work(session_factory) as session:
        sealed = keys.encrypt_field(
            session=session, master=keyring.master, subject_id=subject, table="t", column="c",
            row_id=1, plaintext="secret",
        )  # fmt: skip
    new_file = tmp_path / "new.key"
    new_file.write_text(_invoke(["keys", "generate"], {}).output)
    env = _env(database_url, tmp_path)
    result = _invoke(["keys", "rotate", "--new-key-file", str(new_file)], env)
    assert result.exit_code == 0, result.output
    assert "Re-wrapped 1 data key(s)" in result.output

    new = LocalMasterKey(decode_key(new_file.read_text(), source="new"))
    with session_factory() as session:
        assert keys.decrypt_field(
            session=session, master=new, subject_id=subject, table="t", column="c", row_id=1,
            ciphertext=sealed,
        ) == "secret"  # fmt: skip
        assert audit.verify_chain(session=session).ok
    # The old key no longer matches what is stored: checked, and refused clearly.
    result = _invoke(["keys", "check"], env)
    assert result.exit_code == 1 and "configured master key" in result.output
    ok = _invoke(["keys", "check"], {**env, "SMARTPROTECT_MASTER_KEY_FILE": str(new_file),
                                     "SMARTPROTECT_MASTER_KEY": ""})  # fmt: skip
    assert ok.exit_code == 0, ok.output


def test_audit_verify_finds_a_single_edited_row(
    database_url, engine, session_factory, clock, keyring, tmp_path
):
    _events(session_factory, clock, keyring)
    env = _env(database_url, tmp_path)
    result = _invoke(["audit", "verify"], env)
    assert result.exit_code == 0 and "OK: 4 audit row(s) verified" in result.output

    from tests.audit.test_service import _tamper

    _tamper(engine, "UPDATE audit_events SET actor = 'nobody' WHERE seq = 2")
    result = _invoke(["audit", "verify"], env)
    assert result.exit_code == 1
    assert "TAMPERED: audit row 2" in result.output


def test_audit_anchor_is_signed_and_pins_the_chain(
    database_url, engine, session_factory, clock, keyring, tmp_path
):
    _events(session_factory, clock, keyring)
    key_file = tmp_path / "signing.pem"
    from smartprotect.signing import create as create_signing_key

    create_signing_key(key_file)
    env = _env(database_url, tmp_path, SMARTPROTECT_AUDIT_SIGNING_KEY_FILE=str(key_file))
    result = _invoke(["audit", "anchor"], env)
    assert result.exit_code == 0, result.output
    anchor = json.loads(result.output)
    assert anchor["seq"] == 4 and len(anchor["head_hash"]) == 64 and anchor["signature"]
    anchor_file = tmp_path / "anchor.json"
    anchor_file.write_text(result.output)
    assert _invoke(["audit", "verify", "--anchor", str(anchor_file)], env).exit_code == 0

    # A forged anchor (signature no longer matches) is refused.
    forged = dict(anchor, head_hash="f" * 64)
    anchor_file.write_text(json.dumps(forged))
    result = _invoke(["audit", "verify", "--anchor", str(anchor_file)], env)
    assert result.exit_code == 1 and "signature" in result.output

    # Rewriting the whole chain consistently is caught by the anchor kept outside.
    anchor_file.write_text(json.dumps(anchor))
    from tests.audit.test_service import _tamper

    _tamper(engine, "DELETE FROM audit_events")
    with unit_of_work(session_factory) as session:
        from sqlalchemy import update

        from smartprotect.audit.models import AuditChainHead

        session.execute(update(AuditChainHead).values(last_seq=0, head_hash="0" * 64))
    _events(session_factory, clock, keyring)
    assert _invoke(["audit", "verify"], env).exit_code == 0  # self-consistent again...
    result = _invoke(["audit", "verify", "--anchor", str(anchor_file)], env)
    assert result.exit_code == 1 and "differs from the anchor" in result.output  # ...but not this


def test_anchor_needs_a_signing_key_outside_development(database_url, engine, tmp_path):
    result = _invoke(["audit", "anchor"], _env(database_url, tmp_path))
    assert result.exit_code == 1 and "SMARTPROTECT_AUDIT_SIGNING_KEY_FILE" in result.output


def test_serve_refuses_a_missing_or_wrong_master_key(database_url, engine, session_factory,
                                                     clock, keyring, tmp_path):  # fmt: skip
    _events(session_factory, clock, keyring, count=1)
    base = _env(database_url, tmp_path, SMARTPROTECT_BASE_URL="https://smprotect.com",
                PATH="/usr/bin:/bin")  # fmt: skip
    for master_key, expected in (
        ("", "no master key"),
        ("bm90IGEga2V5", "32 random bytes"),
        (encode_key(bytes(32)), "configured master key"),
    ):
        env = {**base, "SMARTPROTECT_MASTER_KEY": master_key}
        if not master_key:
            del env["SMARTPROTECT_MASTER_KEY"]
        result = subprocess.run(
            [sys.executable, "-m", "smartprotect", "serve", "--port", "1"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert "cannot start" in result.stderr and expected in result.stderr
