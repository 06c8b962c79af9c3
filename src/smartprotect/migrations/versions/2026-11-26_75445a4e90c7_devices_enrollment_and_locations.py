"""devices enrollment codes and locations

Revision ID: 75445a4e90c7
Revises: 62837d61671a
Create Date: 2026-11-26 04:56:55.954019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import smartprotect.db
from smartprotect.migrations import append_only

revision: str = "75445a4e90c7"
down_revision: str | None = "62837d61671a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("agent_version", sa.String(length=32), nullable=True),
        sa.Column("credential_hash", sa.String(length=64), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("enrolled_at", smartprotect.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", smartprotect.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("battery_percent", sa.Integer(), nullable=True),
        sa.Column("sealed_accounts", sa.LargeBinary(), nullable=True),
        sa.Column("lost", sa.Boolean(), nullable=False),
        sa.Column("revoked_at", smartprotect.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_devices_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("credential_hash", name=op.f("uq_devices_credential_hash")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_user_id"), ["user_id"], unique=False)

    op.create_table(
        "enrollment_codes",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("device_name", sa.String(length=100), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("created_at", smartprotect.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", smartprotect.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", smartprotect.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_enrollment_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_enrollment_codes_code_hash")),
    )
    op.create_table(
        "device_locations",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("fixed_at", smartprotect.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", smartprotect.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_locations_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_locations")),
    )
    with op.batch_alter_table("device_locations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_device_locations_device_fix", ["device_id", "fixed_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_device_locations_received_at"), ["received_at"], unique=False
        )

    # A plain ADD COLUMN on both engines: the append-only ledger is never rebuilt or updated.
    op.add_column("consent_events", sa.Column("scope", sa.String(length=64), nullable=True))


def downgrade() -> None:
    append_only.unprotect("consent_events")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_column("scope")
    append_only.protect("consent_events")

    with op.batch_alter_table("device_locations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_locations_received_at"))
        batch_op.drop_index("ix_device_locations_device_fix")

    op.drop_table("device_locations")
    op.drop_table("enrollment_codes")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_user_id"))

    op.drop_table("devices")
