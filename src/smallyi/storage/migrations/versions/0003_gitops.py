"""gitops: sync records, their per-host files, and the synced state for drift checks

Revision ID: 0003_gitops
Revises: 0001
Create Date: 2026-11-27 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_gitops"
down_revision = "0001"
branch_labels = None
depends_on = None

BigID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gitops_syncs",
        sa.Column("id", BigID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("commit", sa.String(length=40), nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("runner", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gitops_syncs")),
    )
    with op.batch_alter_table("gitops_syncs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gitops_syncs_commit"), ["commit"], unique=False)
        batch_op.create_index(batch_op.f("ix_gitops_syncs_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_gitops_syncs_started_at"), ["started_at"], unique=False)

    op.create_table(
        "gitops_sync_files",
        sa.Column("id", BigID, nullable=False),
        sa.Column("sync_id", BigID, nullable=False),
        sa.Column("host_name", sa.String(length=255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("template", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("diff", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["sync_id"], ["gitops_syncs.id"], ondelete="CASCADE",
                                name=op.f("fk_gitops_sync_files_sync_id_gitops_syncs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gitops_sync_files")),
    )
    with op.batch_alter_table("gitops_sync_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gitops_sync_files_sync_id"), ["sync_id"], unique=False)
        batch_op.create_index("ix_gitops_sync_files_host_name", ["host_name", "sync_id"], unique=False)

    op.create_table(
        "gitops_state",
        sa.Column("host_name", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("commit", sa.String(length=40), nullable=False),
        sa.Column("sync_id", sa.BigInteger(), nullable=False),
        sa.Column("template", sa.String(length=255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("host_name", "path", name=op.f("pk_gitops_state")),
    )


def downgrade() -> None:
    op.drop_table("gitops_state")
    with op.batch_alter_table("gitops_sync_files", schema=None) as batch_op:
        batch_op.drop_index("ix_gitops_sync_files_host_name")
        batch_op.drop_index(batch_op.f("ix_gitops_sync_files_sync_id"))
    op.drop_table("gitops_sync_files")
    with op.batch_alter_table("gitops_syncs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gitops_syncs_started_at"))
        batch_op.drop_index(batch_op.f("ix_gitops_syncs_status"))
        batch_op.drop_index(batch_op.f("ix_gitops_syncs_commit"))
    op.drop_table("gitops_syncs")
