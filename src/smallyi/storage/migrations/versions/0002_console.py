"""console: per-user preferences, web-terminal sessions and their recordings

Revision ID: 0002_console
Revises: 0001
Create Date: 2026-11-27 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_console"
down_revision = "0001"
branch_labels = None
depends_on = None

BigID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "user_preferences",
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_user_preferences")),
    )
    op.create_table(
        "terminal_sessions",
        sa.Column("id", BigID, nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("host_name", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("login_user", sa.String(length=128), nullable=False),
        sa.Column("client_address", sa.String(length=255), nullable=False),
        sa.Column("runner", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("cols", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("output_bytes", sa.BigInteger(), nullable=False),
        sa.Column("input_bytes", sa.BigInteger(), nullable=False),
        sa.Column("recording_bytes", sa.BigInteger(), nullable=False),
        sa.Column("recording_truncated", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminal_sessions")),
    )
    with op.batch_alter_table("terminal_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_terminal_sessions_username"), ["username"], unique=False)
        batch_op.create_index(batch_op.f("ix_terminal_sessions_started_at"), ["started_at"], unique=False)
        batch_op.create_index("ix_terminal_sessions_host_started", ["host_name", "started_at"], unique=False)
    op.create_table(
        "terminal_chunks",
        sa.Column("session_id", BigID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["terminal_sessions.id"],
            name=op.f("fk_terminal_chunks_session_id_terminal_sessions"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "seq", name=op.f("pk_terminal_chunks")),
    )


def downgrade() -> None:
    op.drop_table("terminal_chunks")
    with op.batch_alter_table("terminal_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_terminal_sessions_host_started")
        batch_op.drop_index(batch_op.f("ix_terminal_sessions_started_at"))
        batch_op.drop_index(batch_op.f("ix_terminal_sessions_username"))
    op.drop_table("terminal_sessions")
    op.drop_table("user_preferences")
