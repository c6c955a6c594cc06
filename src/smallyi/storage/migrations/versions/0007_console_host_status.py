"""console: an index for each host's latest result (the host list's status filter)

Revision ID: 0007_console_host_status
Revises: 0002_console
Create Date: 2026-11-27 05:00:00
"""

from alembic import op

revision = "0007_console_host_status"
down_revision = "0002_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_results_host_id", "results", ["host_name", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_results_host_id", table_name="results")
