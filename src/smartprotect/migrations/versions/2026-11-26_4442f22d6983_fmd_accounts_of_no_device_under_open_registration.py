"""fmd accounts of no device under open registration

Revision ID: 4442f22d6983
Revises: eb2a66883420
Create Date: 2026-11-26 16:56:11.645229
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import smartprotect.db

revision: str = "4442f22d6983"
down_revision: str | None = "eb2a66883420"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Foreign keys are off while SQLite rebuilds the table (env.py): its sessions and items
    # stay.
    with op.batch_alter_table("fmd_accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("provided_at", smartprotect.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.alter_column("device_id", existing_type=sa.Uuid(), nullable=True)
    # The accounts so far logged in at some time since; registering is the last time known.
    op.execute("UPDATE fmd_accounts SET provided_at = created_at")
    with op.batch_alter_table("fmd_accounts", schema=None) as batch_op:
        batch_op.alter_column(
            "provided_at", existing_type=smartprotect.db.UTCDateTime(timezone=True),
            nullable=False,
        )  # fmt: skip


def downgrade() -> None:
    # Accounts of no device cannot be kept without one; their sessions and items go too.
    op.execute("DELETE FROM fmd_items WHERE account_id IN "
               "(SELECT id FROM fmd_accounts WHERE device_id IS NULL)")  # fmt: skip
    op.execute("DELETE FROM fmd_sessions WHERE account_id IN "
               "(SELECT id FROM fmd_accounts WHERE device_id IS NULL)")  # fmt: skip
    op.execute("DELETE FROM fmd_accounts WHERE device_id IS NULL")
    with op.batch_alter_table("fmd_accounts", schema=None) as batch_op:
        batch_op.alter_column("device_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column("provided_at")
