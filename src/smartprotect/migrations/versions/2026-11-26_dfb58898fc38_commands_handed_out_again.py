"""commands handed out again

Revision ID: dfb58898fc38
Revises: 4442f22d6983
Create Date: 2026-11-26 17:11:23.874350
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import smartprotect.db

revision: str = "dfb58898fc38"
down_revision: str | None = "4442f22d6983"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sent_at", smartprotect.db.UTCDateTime(timezone=True), nullable=True)
        )
    # Commands delivered before: handed out again, if still unreported, from then.
    op.execute("UPDATE commands SET sent_at = delivered_at WHERE delivered_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.drop_column("sent_at")
