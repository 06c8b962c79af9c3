"""`smartprotect compliance report`: every clause, its controls and live evidence, en and ru."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from smartprotect.accounts.service import create_user
from smartprotect.db import unit_of_work
from smartprotect.i18n import gettext_for
from smartprotect.mail import service as mail
from smartprotect.privacy import evidence
from smartprotect.privacy.clauses import CLAUSES
from smartprotect.privacy.consent import service as consent
from smartprotect.privacy.consent.models import Channel, ConsentAction, Purpose
from smartprotect.privacy.keys import service as keys
from smartprotect.privacy.policy import service as policy
from tests.cli.test_cli import _env, _invoke


def _report(database_url, tmp_path, *args):
    env = _env(database_url, SMARTPROTECT_VAR_DIR=str(tmp_path / "var"))
    return _invoke(["compliance", "report", *args], env)


def _lists_every_clause(output: str, language: str) -> None:
    translate = gettext_for(language)
    lines = output.splitlines()
    for clause in CLAUSES:
        assert f"{clause.number}  {translate(clause.title)}" in lines, clause.number


def _arrange(session_factory, clock, keyring, published_policy) -> None:
    """Three users: alice registered 400 days ago, bob accepted the policy, carol did not
    and was shredded; marketing by email granted by alice, granted then withdrawn by bob."""
    real_now = datetime.now(UTC).replace(microsecond=0)
    with unit_of_work(session_factory) as session:
        document = policy.get_document(session=session, document_id=published_policy["en"])
        people = {}
        for name, age in (("alice", 400), ("bob", 3), ("carol", 1)):
            clock.set(real_now - timedelta(days=age))
            user = create_user(
                session=session, keyring=keyring, clock=clock,
                email=f"{name}@example.kz", phone="+77010000000", password_hash="x",
                language="en", created_at=clock.now(), password_changed_at=clock.now(),
            )  # fmt: skip
            people[name] = user
        clock.set(real_now - timedelta(hours=1))
        for name in ("alice", "bob"):
            policy.record_acceptance(
                session=session, keyring=keyring, subject_id=people[name].id, document=document,
                channel=Channel.WEB, actor="system", clock=clock,
            )  # fmt: skip
        for name, action in (
            ("alice", ConsentAction.GRANT),
            ("bob", ConsentAction.GRANT),
            ("bob", ConsentAction.WITHDRAW),
        ):
            consent.record(
                session=session, keyring=keyring, subject_id=people[name].id,
                purpose=Purpose.MARKETING_EMAIL, action=action, policy_document_id=document.id,
                channel=Channel.WEB, actor="system", clock=clock,
            )  # fmt: skip
        mail.enqueue(session=session, recipient="bob@example.kz", subject="s", body_text="b",
                     clock=clock, user_id=people["bob"].id)  # fmt: skip
        keys.destroy_key(session=session, subject_id=people["carol"].id, clock=clock)


def test_the_report_on_an_empty_database(database_url, engine, tmp_path):
    result = _report(database_url, tmp_path)
    assert result.exit_code == 0, result.output
    _lists_every_clause(result.output, "en")
    assert "No revision of the Privacy Policy has been published." in result.output
    assert "No personal data is held." in result.output
    assert "Accounts: 0, of them with a confirmed email address: 0" in result.output
    assert "Audit log rows verified: 0; hash chain intact" in result.output
    assert "Subject data keys: 0 live, 0 shredded" in result.output
    assert "Tables the database keeps append-only: " in result.output
    assert f"Clauses: {len(CLAUSES)}; enforced: " in result.output
    assert "unavailable" not in result.output


def test_the_report_shows_live_evidence(
    database_url, engine, session_factory, clock, keyring, published_policy, tmp_path
):
    _arrange(session_factory, clock, keyring, published_policy)
    result = _report(database_url, tmp_path)
    assert result.exit_code == 0, result.output
    output = result.output
    _lists_every_clause(output, "en")
    assert "Revision in force: 2017-06-15, posted " in output and "texts: en, ru" in output
    assert "Users who have not accepted revision 2017-06-15: 1 of 3" in output
    assert "Accounts: 3, of them with a confirmed email address: 0" in output
    assert "Consent marketing_email: in force for 1, withdrawn or refused by 1" in output
    assert "Consent marketing_sms: in force for 0, withdrawn or refused by 0" in output
    assert "Subject data keys: 2 live, 1 shredded" in output
    assert "Outbox: waiting to be sent 1, undeliverable 0" in output
    assert "Accounts registered more than 1 year ago: 1" in output
    assert "in users (age in days: 400)" in output
    assert "hash chain intact" in output
    assert "NOT guarded" not in output and "unavailable" not in output
    # Each clause shows its own evidence under it.
    retention = output.split("\n2.4  ", 1)[1].split("\n3.1  ", 1)[0]
    assert "Oldest personal data held: " in retention and "Status: partial" in retention


def test_the_report_in_russian(
    database_url, engine, session_factory, clock, keyring, published_policy, tmp_path
):
    _arrange(session_factory, clock, keyring, published_policy)
    result = _report(database_url, tmp_path, "--lang", "ru")
    assert result.exit_code == 0, result.output
    output = result.output
    _lists_every_clause(output, "ru")
    assert "2.3.2  Паспортные данные" in output
    assert "Пользователей, не принявших редакцию 2017-06-15: 1 из 3" in output
    english = [clause.title for clause in CLAUSES if clause.title in output]
    assert english == []
    for word in ("Status:", "Controls:", "Evidence:", "Reason:", "Accounts:", "enforced"):
        assert word not in output


def test_the_report_names_a_broken_audit_chain(
    database_url, engine, session_factory, clock, keyring, published_policy, tmp_path
):
    from tests.audit.test_service import _tamper

    _arrange(session_factory, clock, keyring, published_policy)
    _tamper(engine, "UPDATE audit_events SET actor = 'nobody' WHERE seq = 2")
    result = _report(database_url, tmp_path)
    assert "Audit log: hash chain BROKEN at row 2: its content does not match its hash" in (
        result.output
    )
    result = _report(database_url, tmp_path, "--lang", "ru")
    assert "НАРУШЕНА" in result.output and "does not match" not in result.output


def test_evidence_that_cannot_be_computed_is_reported_and_fails_the_command(
    database_url, engine, tmp_path, monkeypatch
):
    def broken(*, session, clock):
        raise RuntimeError("no such table")

    monkeypatch.setitem(evidence.EVIDENCE, "users", broken)
    result = _report(database_url, tmp_path)
    assert result.exit_code == 1
    assert "unavailable: RuntimeError: no such table" in result.output
    # The rest of the report is still there.
    _lists_every_clause(result.output, "en")
    assert "Subject data keys: 0 live, 0 shredded" in result.output


def test_the_report_needs_a_migrated_database(tmp_path):
    result = _report(f"sqlite:///{tmp_path}/empty.db", tmp_path)
    assert result.exit_code == 1 and "smartprotect db upgrade" in result.output
