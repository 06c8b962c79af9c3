"""policy revisions linking their texts and declines

Revision ID: 62837d61671a
Revises: b939b68a53ee
Create Date: 2026-11-26 04:40:08.199415
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import smartprotect.db
from smartprotect.migrations import append_only

revision: str = "62837d61671a"
down_revision: str | None = "b939b68a53ee"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # policy_documents is append-only; the guard is lifted only while it is restructured.
    append_only.unprotect("policy_documents")
    op.create_table(
        "policy_revisions",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("revision_date", sa.Date(), nullable=False),
        sa.Column("published_at", smartprotect.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_revisions")),
        sa.UniqueConstraint("version", name=op.f("uq_policy_revisions_version")),
    )
    op.create_table(
        "policy_declines",
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("declined_at", smartprotect.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["policy_documents.id"],
            name=op.f("fk_policy_declines_document_id_policy_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_declines")),
    )
    op.create_index(
        op.f("ix_policy_declines_subject_id"), "policy_declines", ["subject_id"], unique=False
    )

    with op.batch_alter_table("policy_documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision_id", sa.Uuid(), nullable=True))

    # Each version published so far becomes a revision, in force from its first text.
    revisions = sa.table(
        "policy_revisions",
        sa.column("id", sa.Uuid()),
        sa.column("version", sa.String()),
        sa.column("revision_date", sa.Date()),
        sa.column("published_at", smartprotect.db.UTCDateTime()),
    )
    documents = sa.table(
        "policy_documents",
        sa.column("revision_id", sa.Uuid()),
        sa.column("version", sa.String()),
        sa.column("published_at", smartprotect.db.UTCDateTime()),
    )
    bind = op.get_bind()
    versions = bind.execute(
        sa.select(documents.c.version, sa.func.min(documents.c.published_at)).group_by(
            documents.c.version
        )
    ).all()
    for version, first_published in versions:
        revision_id = uuid.uuid4()
        bind.execute(
            revisions.insert().values(
                id=revision_id,
                version=version,
                revision_date=first_published.date(),
                published_at=first_published,
            )
        )
        bind.execute(
            documents.update().where(documents.c.version == version).values(revision_id=revision_id)
        )

    with op.batch_alter_table("policy_documents", schema=None) as batch_op:
        batch_op.alter_column("revision_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_constraint(batch_op.f("uq_policy_documents_version"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_policy_documents_revision_id"), ["revision_id", "language"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_policy_documents_revision_id_policy_revisions"),
            "policy_revisions",
            ["revision_id"],
            ["id"],
        )
        batch_op.drop_column("published_at")
        batch_op.drop_column("version")

    for table in ("policy_revisions", "policy_documents", "policy_declines"):
        append_only.protect(table)


def downgrade() -> None:
    for table in ("policy_revisions", "policy_documents", "policy_declines"):
        append_only.unprotect(table)
    with op.batch_alter_table("policy_documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("published_at", smartprotect.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE policy_documents SET version = (SELECT version FROM policy_revisions "
        "WHERE policy_revisions.id = policy_documents.revision_id), published_at = "
        "(SELECT published_at FROM policy_revisions "
        "WHERE policy_revisions.id = policy_documents.revision_id)"
    )
    with op.batch_alter_table("policy_documents", schema=None) as batch_op:
        batch_op.alter_column("version", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column(
            "published_at", existing_type=smartprotect.db.UTCDateTime(), nullable=False
        )
        batch_op.drop_constraint(
            batch_op.f("fk_policy_documents_revision_id_policy_revisions"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_policy_documents_revision_id"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_policy_documents_version"), ["version", "language"]
        )
        batch_op.drop_column("revision_id")
    append_only.protect("policy_documents")
    op.drop_table("policy_declines")
    op.drop_table("policy_revisions")
