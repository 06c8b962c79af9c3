"""Database triggers that raise the access counter (`devices.known`), for use in migrations.

They fire whenever what the check-in path keeps between batches could become wrong: a
device's credential, revocation, capabilities, owner or lost state changes or the device is
deleted; a consent event is recorded; a data key is changed or destroyed. Being triggers,
they fire however the change is made.

On PostgreSQL they are deferred to commit: the counter's one row is then locked only for
the instant of a commit, last of all a transaction's locks, so two transactions cannot
deadlock over it, and a batch that sees the new value also sees the change. A migration
that rebuilds one of these tables on SQLite (batch mode) drops its triggers: it must call
`create` again.
"""

from __future__ import annotations

from alembic import op

PG_FUNCTION = "smartprotect_access_changed"
BUMP = "UPDATE access_generation SET value = value + 1"

# (trigger name, event, table)
TRIGGERS = [
    ("devices_access_changed_update",
     "UPDATE OF credential_hash, revoked_at, capabilities, user_id, lost, found_notified_at",
     "devices"),
    ("devices_access_changed_delete", "DELETE", "devices"),
    ("consent_events_access_changed", "INSERT", "consent_events"),
    ("subject_keys_access_changed_update", "UPDATE", "subject_keys"),
    ("subject_keys_access_changed_delete", "DELETE", "subject_keys"),
]  # fmt: skip


def create() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                {BUMP};
                RETURN NULL;
            END
            $$
            """
        )
    for name, event, table in TRIGGERS:
        if postgres:
            op.execute(
                f"CREATE CONSTRAINT TRIGGER {name} AFTER {event} ON {table} "
                f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()"
            )
        else:
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {BUMP}; END")


def drop() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, _, table in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
    if postgres:
        op.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")
