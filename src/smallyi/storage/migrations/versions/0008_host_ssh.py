"""hosts: per-host SSH settings (key, known_hosts, host key policy, connect timeout)

Revision ID: 0008_host_ssh
Revises: 0007_console_host_status
Create Date: 2026-12-04 09:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_host_ssh"
down_revision = "0007_console_host_status"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("ssh", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("ssh")
