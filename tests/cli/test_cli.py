"""The smartprotect command: migrations, publishing the policy, mail, serve's checks."""

from __future__ import annotations

import gc
import subprocess
import sys

import uvicorn
from click.testing import CliRunner
from sqlalchemy import select

from smartprotect.cli import main
from smartprotect.cli.serve import YOUNG_GENERATION_THRESHOLD
from smartprotect.config import get_settings
from smartprotect.privacy.keys.master import encode_key
from smartprotect.privacy.policy.models import PolicyRevision
from smartprotect.signing import create as create_signing_key
from tests.conftest import ROOT, TEST_MASTER_KEY, TEST_SECRET
from tests.helpers import queue_mail


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {"SMARTPROTECT_DATABASE_URL": database_url, "SMARTPROTECT_ENV": "development", **extra}


def _invoke(args, env):
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    finally:
        get_settings.cache_clear()


def test_db_upgrade_on_an_empty_database(tmp_path):
    env = _env(f"sqlite:///{tmp_path}/fresh.db")
    result = _invoke(["db", "upgrade"], env)
    assert result.exit_code == 0, result.output
    assert "Database at revision" in result.output
    assert "up to date" in _invoke(["db", "current"], env).output


def _publish_args(version="2017-06-15", en=None, ru=None):
    en = en or ROOT / "policy" / "2017-06-15.en.txt"
    ru = ru or ROOT / "policy" / "2017-06-15.ru.txt"
    return ["policy", "publish", "--version", version, "--en", str(en), "--ru", str(ru)]


def test_policy_publish(database_url, engine, db, tmp_path):
    env = _env(database_url, SMARTPROTECT_VAR_DIR=str(tmp_path))
    result = _invoke(_publish_args(), env)
    assert result.exit_code == 0, result.output
    assert "Published 2017-06-15, in force now. sha256 en:" in result.output
    assert "Already published" in _invoke(_publish_args(), env).output
    revision = db.scalar(select(PolicyRevision))
    texts = {d.language: d.text for d in revision.documents}
    assert texts["en"] == (ROOT / "policy" / "2017-06-15.en.txt").read_text(encoding="utf-8")
    assert texts["ru"].startswith("Политика конфиденциальности")
    assert (
        "0 of 0 user(s) have not accepted revision 2017-06-15"
        in _invoke(["policy", "pending"], env).output
    )


def test_policy_publish_with_lang_and_file_pairs(database_url, engine, tmp_path):
    env = _env(database_url, SMARTPROTECT_VAR_DIR=str(tmp_path))
    en, ru = ROOT / "policy" / "2017-06-15.en.txt", ROOT / "policy" / "2017-06-15.ru.txt"
    args = ["policy", "publish", "--version", "1", "--lang", "en", "--file", str(en)]
    result = _invoke(args, env)
    assert result.exit_code == 2 and "missing: ru" in result.output
    result = _invoke([*args, "--lang", "ru", "--file", str(ru)], env)
    assert result.exit_code == 0, result.output


def test_policy_publish_refuses_changes_and_older_versions(database_url, engine, tmp_path):
    env = _env(database_url, SMARTPROTECT_VAR_DIR=str(tmp_path))
    other = tmp_path / "other.txt"
    other.write_text("other text", encoding="utf-8")
    assert _invoke(_publish_args(), env).exit_code == 0
    result = _invoke(_publish_args(en=other), env)
    assert result.exit_code == 1 and "already published with other text" in result.output
    result = _invoke(_publish_args(version="2016-01-01", en=other, ru=other), env)
    assert result.exit_code == 1 and "newer than the one in force (2017-06-15)" in result.output


def test_policy_publish_validates_its_input(database_url, engine, tmp_path):
    env = _env(database_url, SMARTPROTECT_VAR_DIR=str(tmp_path))
    path = tmp_path / "p.txt"
    path.write_bytes(b"\xff\xfe not utf-8 \xc3")
    result = _invoke(_publish_args(en=path), env)
    assert result.exit_code == 1 and "not UTF-8" in result.output
    result = _invoke(
        ["policy", "publish", "--version", "1", "--lang", "kk", "--file", str(path)], env
    )
    assert result.exit_code == 2
    result = _invoke(_publish_args(version="v1"), env)
    assert result.exit_code == 1 and "numbers separated by dots or dashes" in result.output


def test_mail_send_pending(database_url, engine, smtp_port, session_factory, clock, mailbox):

    queue_mail(session_factory, clock, "x@example.kz", "s", "b")
    # Mail is sealed with its recipient's key: the command needs the tests' keys to open it.
    env = _env(
        database_url, SMARTPROTECT_MAIL_BACKEND="smtp", SMARTPROTECT_SMTP_PORT=str(smtp_port),
        SMARTPROTECT_MASTER_KEY=encode_key(TEST_MASTER_KEY), SMARTPROTECT_SECRET_KEY=TEST_SECRET,
    )  # fmt: skip
    result = _invoke(["mail", "send-pending"], env)
    assert "Sent 1 message(s)." in result.output
    assert mailbox.last_to("x@example.kz")


def test_serve_refuses_the_default_secret_outside_development(tmp_path):
    env = {
        "SMARTPROTECT_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "SMARTPROTECT_ENV": "production",
    }
    result = subprocess.run(
        [sys.executable, "-m", "smartprotect", "serve", "--port", "1"],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SMARTPROTECT_SECRET_KEY" in result.stderr


def test_serve_refuses_an_unmigrated_database(tmp_path):
    result = _invoke(["serve", "--port", "1"], _env(f"sqlite:///{tmp_path}/empty.db"))
    assert result.exit_code == 1 and "smartprotect db upgrade" in result.output


def test_commands_on_an_unmigrated_database_say_what_to_do(tmp_path):
    env = _env(f"sqlite:///{tmp_path}/empty.db")
    result = _invoke(_publish_args(), env)
    assert result.exit_code == 1 and "smartprotect db upgrade" in result.output
    result = _invoke(["mail", "send-pending"], env)
    assert result.exit_code == 1 and "smartprotect db upgrade" in result.output


def test_serve_runs_the_cycle_collector_less_often(database_url, engine, tmp_path, monkeypatch):
    key_file = tmp_path / "command.key"
    create_signing_key(key_file)
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: seen.update(gc=gc.get_threshold()))
    before = gc.get_threshold()
    try:
        result = _invoke(["serve", "--port", "1"], _env(
            database_url, SMARTPROTECT_MASTER_KEY=encode_key(TEST_MASTER_KEY),
            SMARTPROTECT_SECRET_KEY=TEST_SECRET, SMARTPROTECT_VAR_DIR=str(tmp_path),
            SMARTPROTECT_COMMAND_SIGNING_KEY_FILE=str(key_file),
        ))  # fmt: skip
    finally:
        gc.set_threshold(*before)
    assert result.exit_code == 0, result.output
    assert seen["gc"] == (YOUNG_GENERATION_THRESHOLD, *before[1:])
