"""SOPs from the GitOps repository (sops.origin*), a task's own notification (tasks.notify)

Revision ID: 0006_git_sops
Revises: 0003_gitops, 0004_sop
Create Date: 2026-11-27 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_git_sops"
down_revision = ("0003_gitops", "0004_sop")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sops", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.String(length=16), nullable=False, server_default="platform"))
        batch_op.add_column(sa.Column("origin_repo", sa.String(length=512), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("origin_path", sa.String(length=255), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("origin_commit", sa.String(length=40), nullable=False, server_default=""))
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("notify")
    with op.batch_alter_table("sops", schema=None) as batch_op:
        batch_op.drop_column("origin_commit")
        batch_op.drop_column("origin_path")
        batch_op.drop_column("origin_repo")
        batch_op.drop_column("origin")
