"""lost mode and theft incidents

Revision ID: c15246a33704
Revises: e53af5806be5
Create Date: 2026-11-26 05:11:04.049584
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import smartprotect.db

revision: str = "c15246a33704"
down_revision: str | None = "e53af5806be5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "theft_incidents",
        sa.Column("reported_on", sa.Date(), nullable=False),
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_theft_incidents")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lost_since", smartprotect.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "found_notified_at", smartprotect.db.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("found_notified_at")
        batch_op.drop_column("lost_since")

    op.drop_table("theft_incidents")
