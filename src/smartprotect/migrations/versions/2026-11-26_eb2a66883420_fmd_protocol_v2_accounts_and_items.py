"""fmd protocol v2 accounts and items

FMD server protocol v2 (fmd-server 0.17): an account's protocol version and encrypted master
key; an item's client-chosen id and time, which its encryption is bound to. v2 commands are
items of their own kind (a new value of the kind column, which has no database constraint).

Revision ID: eb2a66883420
Revises: ed1bad597c5f
Create Date: 2026-11-26 15:02:18.124253
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "eb2a66883420"
down_revision: str | None = "ed1bad597c5f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN, not batch mode: rebuilding fmd_accounts on SQLite would
    # cascade-delete its sessions and items. Existing accounts are the app's: protocol 1.
    op.add_column(
        "fmd_accounts",
        sa.Column("protocol_version", sa.Integer(), nullable=False, server_default="1"),
    )
    op.add_column("fmd_accounts", sa.Column("master_key", sa.Text(), nullable=True))
    op.add_column("fmd_items", sa.Column("client_item_id", sa.String(length=32), nullable=True))
    op.add_column("fmd_items", sa.Column("unix_millis", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("fmd_items", "unix_millis")
    op.drop_column("fmd_items", "client_item_id")
    op.drop_column("fmd_accounts", "master_key")
    op.drop_column("fmd_accounts", "protocol_version")
