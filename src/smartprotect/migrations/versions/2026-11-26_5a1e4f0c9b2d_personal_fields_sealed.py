"""personal fields sealed: addresses, phones, names and queued mail stored only encrypted

Revision ID: 5a1e4f0c9b2d
Revises: 9ecfc7b4f6c2
Create Date: 2026-11-26 12:45:00

Written by hand: the columns are renamed and converted in place, which autogenerate cannot
express (it would drop and re-add them, losing the data). Existing rows are sealed with their
subject's key, so upgrading a database that holds accounts needs the master key and secret
(the server's settings). Columns are renamed or dropped natively on both engines: SQLite's
table rebuild would cascade-delete every row that refers to `users`.

On PostgreSQL the replaced values stay in dead row versions until vacuumed: run
`VACUUM FULL users, email_tokens, outbox_messages` after upgrading a database with data.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5a1e4f0c9b2d"
down_revision: str | None = "9ecfc7b4f6c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USER_FIELDS = ("email", "pending_email", "phone", "last_name", "first_name", "patronymic")
MAIL_FIELDS = ("recipient", "subject", "body_text", "body_html")


def _keyring():
    from smartprotect.config import get_settings
    from smartprotect.privacy.keys.master import keyring_from_settings

    return keyring_from_settings(get_settings())


def _ciphers(connection, keyring):
    """Every live data key, by the hex form of its subject's id."""
    from smartprotect.privacy.keys import service as keys

    rows = connection.execute(sa.text(
        "SELECT subject_id, wrapped_key FROM subject_keys WHERE wrapped_key IS NOT NULL"))  # fmt: skip
    return {
        _uuid(subject).hex: keys.unwrap_key(
            keyring.master, wrapped=wrapped, subject_id=_uuid(subject)
        )
        for subject, wrapped in rows
    }


def _uuid(value):
    import uuid

    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _index(keyring, address: str) -> str:
    from smartprotect.privacy.keys.sealed import blind_index

    return blind_index(secret=keyring.secret, purpose="email", value=address.strip().lower())


def _seal_existing(connection) -> None:
    from smartprotect.privacy.keys import service as keys

    users = connection.execute(sa.text(
        "SELECT id, email, pending_email, phone, last_name, first_name, patronymic FROM users"
    )).all()  # fmt: skip
    mail = connection.execute(sa.text(
        "SELECT id, user_id, recipient, subject, body_text, body_html FROM outbox_messages"
    )).all()  # fmt: skip
    tokens = connection.execute(sa.text("SELECT id, email FROM email_tokens")).all()
    if not (users or mail or tokens):
        return
    keyring = _keyring()
    ciphers = _ciphers(connection, keyring)
    for user in users:
        cipher = ciphers[_uuid(user.id).hex]
        values = {"id": user.id, "index": _index(keyring, user.email)}
        for field in USER_FIELDS:
            plain = getattr(user, field) or None  # an empty phone was "not given"
            values[field] = None if plain is None else keys.seal_with(
                cipher, table="users", column=field, row_id=_uuid(user.id), plaintext=plain)  # fmt: skip
        connection.execute(sa.text(
            "UPDATE users SET email = :index, email_sealed = :email, "
            "pending_email_sealed = :pending_email, phone_sealed = :phone, "
            "last_name_sealed = :last_name, first_name_sealed = :first_name, "
            "patronymic_sealed = :patronymic WHERE id = :id"), values)  # fmt: skip
    for token in tokens:
        connection.execute(sa.text("UPDATE email_tokens SET email = :index WHERE id = :id"),
                           {"id": token.id, "index": _index(keyring, token.email)})  # fmt: skip
    for message in mail:
        values = {"id": message.id, "index": _index(keyring, message.recipient)}
        cipher = ciphers.get(_uuid(message.user_id).hex) if message.user_id else None
        for field in MAIL_FIELDS:
            plain = getattr(message, field)
            # Mail of no account has no key to seal it with: it is dropped, unsent.
            values[field] = None if plain is None or cipher is None else keys.seal_with(
                cipher, table="outbox_messages", column=field, row_id=_uuid(message.id),
                plaintext=plain)  # fmt: skip
        connection.execute(sa.text(
            "UPDATE outbox_messages SET recipient = :index, recipient_sealed = :recipient, "
            "subject_sealed = :subject, body_text_sealed = :body_text, "
            "body_html_sealed = :body_html WHERE id = :id"), values)  # fmt: skip


def upgrade() -> None:
    for field in USER_FIELDS:
        op.add_column("users", sa.Column(f"{field}_sealed", sa.LargeBinary(), nullable=True))
    for field in MAIL_FIELDS:
        op.add_column(
            "outbox_messages", sa.Column(f"{field}_sealed", sa.LargeBinary(), nullable=True)
        )
    _seal_existing(op.get_bind())
    op.execute("ALTER TABLE users RENAME COLUMN email TO email_index")
    op.execute("ALTER TABLE email_tokens RENAME COLUMN email TO email_index")
    op.execute("ALTER TABLE outbox_messages RENAME COLUMN recipient TO recipient_index")
    for field in USER_FIELDS[1:]:
        op.drop_column("users", field)
    for field in MAIL_FIELDS[1:]:
        op.drop_column("outbox_messages", field)


def downgrade() -> None:
    # The plain values cannot come back without opening every row; a downgrade keeps the
    # sealed data and restores the columns empty (addresses as their blind index).
    for field in MAIL_FIELDS[1:]:
        op.add_column("outbox_messages", sa.Column(field, sa.Text(), nullable=True))
    for field in USER_FIELDS[1:]:
        op.add_column("users", sa.Column(field, sa.String(254), nullable=True))
    op.execute("ALTER TABLE outbox_messages RENAME COLUMN recipient_index TO recipient")
    op.execute("ALTER TABLE email_tokens RENAME COLUMN email_index TO email")
    op.execute("ALTER TABLE users RENAME COLUMN email_index TO email")
    for field in MAIL_FIELDS:
        op.drop_column("outbox_messages", f"{field}_sealed")
    for field in USER_FIELDS:
        op.drop_column("users", f"{field}_sealed")
