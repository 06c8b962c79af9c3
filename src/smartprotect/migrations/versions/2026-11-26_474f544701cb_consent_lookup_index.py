"""consent lookup index: the latest event per subject, purpose and scope

Revision ID: 474f544701cb
Revises: c15246a33704
Create Date: 2026-11-26 06:49:31.459952
"""

from collections.abc import Sequence

from alembic import op

revision: str = "474f544701cb"
down_revision: str | None = "c15246a33704"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain index operations, not batch mode: on SQLite batch mode may copy the table, which
# would drop the ledger's append-only triggers.
def upgrade() -> None:
    op.drop_index("ix_consent_events_subject_id", table_name="consent_events")
    op.create_index(
        "ix_consent_events_subject_purpose_scope",
        "consent_events",
        ["subject_id", "purpose", "scope", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_consent_events_subject_purpose_scope", table_name="consent_events")
    op.create_index("ix_consent_events_subject_id", "consent_events", ["subject_id"])
