"""SOPs, their runs, approvals and tickets; schedules and their fires; notification channels and deliveries

Revision ID: 0004_sop
Revises: 0001
Create Date: 2026-11-28 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_sop"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ["notify_deliveries", "notify_channels", "schedule_fires", "schedules", "tickets", "sop_approvals",
          "sop_run_events", "sop_run_steps", "sop_runs", "sops"]


def upgrade() -> None:
    op.create_table("notify_channels",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("name", sa.String(length=128), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("url_cipher", sa.Text(), nullable=False),
    sa.Column("secret_cipher", sa.Text(), nullable=False),
    sa.Column("options", sa.JSON(), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("created_by", sa.String(length=128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_channels")),
    sa.UniqueConstraint("name", name=op.f("uq_notify_channels_name"))
    )
    op.create_table("notify_deliveries",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("channel", sa.String(length=128), nullable=False),
    sa.Column("event_key", sa.String(length=255), nullable=False),
    sa.Column("event", sa.String(length=32), nullable=False),
    sa.Column("subject", sa.String(length=255), nullable=False),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_deliveries")),
    sa.UniqueConstraint("channel", "event_key", name=op.f("uq_notify_deliveries_channel"))
    )
    op.create_index(op.f("ix_notify_deliveries_created_at"), "notify_deliveries", ["created_at"], unique=False)
    op.create_index(op.f("ix_notify_deliveries_status"), "notify_deliveries", ["status"], unique=False)
    op.create_table("schedules",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("name", sa.String(length=128), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("cron", sa.String(length=128), nullable=False),
    sa.Column("timezone", sa.String(length=64), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("command", sa.Text(), nullable=False),
    sa.Column("target", sa.JSON(), nullable=False),
    sa.Column("timeout", sa.Float(), nullable=True),
    sa.Column("sop_name", sa.String(length=128), nullable=False),
    sa.Column("vars", sa.JSON(), nullable=False),
    sa.Column("environment", sa.String(length=64), nullable=False),
    sa.Column("missed", sa.String(length=16), nullable=False),
    sa.Column("overlap", sa.String(length=16), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("notify", sa.JSON(), nullable=False),
    sa.Column("created_by", sa.String(length=128), nullable=False),
    sa.Column("role", sa.String(length=64), nullable=False),
    sa.Column("groups", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    sa.UniqueConstraint("name", name=op.f("uq_schedules_name"))
    )
    op.create_table("sop_runs",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("sop_name", sa.String(length=128), nullable=False),
    sa.Column("sop_version", sa.Integer(), nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("trigger", sa.String(length=16), nullable=False),
    sa.Column("started_by", sa.String(length=128), nullable=False),
    sa.Column("role", sa.String(length=64), nullable=False),
    sa.Column("groups", sa.JSON(), nullable=False),
    sa.Column("environment", sa.String(length=64), nullable=False),
    sa.Column("target", sa.JSON(), nullable=False),
    sa.Column("vars", sa.JSON(), nullable=False),
    sa.Column("dry_run", sa.Boolean(), nullable=False),
    sa.Column("parent_run_id", sa.BigInteger(), nullable=True),
    sa.Column("parent_step", sa.String(length=64), nullable=False),
    sa.Column("schedule_id", sa.BigInteger(), nullable=True),
    sa.Column("runner", sa.String(length=255), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cancel_requested", sa.String(length=128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("counts", sa.JSON(), nullable=False),
    sa.Column("last_seq", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_sop_runs"))
    )
    op.create_index(op.f("ix_sop_runs_created_at"), "sop_runs", ["created_at"], unique=False)
    op.create_index(op.f("ix_sop_runs_sop_name"), "sop_runs", ["sop_name"], unique=False)
    op.create_index(op.f("ix_sop_runs_started_by"), "sop_runs", ["started_by"], unique=False)
    op.create_index(op.f("ix_sop_runs_status"), "sop_runs", ["status"], unique=False)
    op.create_table("sops",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("name", sa.String(length=128), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("created_by", sa.String(length=128), nullable=False),
    sa.Column("updated_by", sa.String(length=128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_sops")),
    sa.UniqueConstraint("name", name=op.f("uq_sops_name"))
    )
    op.create_table("tickets",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("run_id", sa.BigInteger(), nullable=True),
    sa.Column("step_id", sa.String(length=64), nullable=False),
    sa.Column("template", sa.String(length=128), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("external_id", sa.String(length=255), nullable=False),
    sa.Column("url", sa.Text(), nullable=False),
    sa.Column("requester", sa.String(length=128), nullable=False),
    sa.Column("sla", sa.String(length=64), nullable=False),
    sa.Column("hosts", sa.JSON(), nullable=False),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("error", sa.Text(), nullable=False),
    sa.Column("response", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets"))
    )
    op.create_index(op.f("ix_tickets_created_at"), "tickets", ["created_at"], unique=False)
    op.create_index(op.f("ix_tickets_run_id"), "tickets", ["run_id"], unique=False)
    op.create_table("schedule_fires",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("schedule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("slot", sa.DateTime(timezone=True), nullable=False),
    sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("runner", sa.String(length=255), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("task_id", sa.BigInteger(), nullable=True),
    sa.Column("run_id", sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(["schedule_id"], ["schedules.id"], name=op.f("fk_schedule_fires_schedule_id_schedules"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_fires")),
    sa.UniqueConstraint("schedule_id", "slot", name=op.f("uq_schedule_fires_schedule_id"))
    )
    op.create_index("ix_schedule_fires_fired", "schedule_fires", ["fired_at"], unique=False)
    op.create_table("sop_approvals",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("step_id", sa.String(length=64), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("approvers", sa.JSON(), nullable=False),
    sa.Column("requested_by", sa.String(length=128), nullable=False),
    sa.Column("decided_by", sa.String(length=128), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("comment", sa.Text(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["run_id"], ["sop_runs.id"], name=op.f("fk_sop_approvals_run_id_sop_runs"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_sop_approvals")),
    sa.UniqueConstraint("run_id", "step_id", name=op.f("uq_sop_approvals_run_id"))
    )
    op.create_index(op.f("ix_sop_approvals_status"), "sop_approvals", ["status"], unique=False)
    op.create_table("sop_run_events",
    sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("step_id", sa.String(length=64), nullable=False),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(["run_id"], ["sop_runs.id"], name=op.f("fk_sop_run_events_run_id_sop_runs"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_sop_run_events"))
    )
    op.create_table("sop_run_steps",
    sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("step_id", sa.String(length=64), nullable=False),
    sa.Column("type", sa.String(length=16), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("wave", sa.Integer(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("task_ids", sa.JSON(), nullable=False),
    sa.Column("result", sa.JSON(), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("duration", sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(["run_id"], ["sop_runs.id"], name=op.f("fk_sop_run_steps_run_id_sop_runs"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("run_id", "step_id", name=op.f("pk_sop_run_steps"))
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
