"""security: a keyed MAC on every audit record and on the chain's head (records before it stay legacy)

Revision ID: 0006_audit_mac
Revises: 0005_security
Create Date: 2026-11-27 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_audit_mac"
down_revision = "0005_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        # 0: written before MACs existed (covered by the hash chain only); 1: HMAC-SHA256 of id and hash
        batch_op.add_column(sa.Column("mac_version", sa.SmallInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("mac_key", sa.String(length=16), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=False, server_default=""))
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mac_from", sa.BigInteger(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("mac_key", sa.String(length=16), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=False, server_default=""))
    # every record written from now on must carry a MAC; the ones before are legacy
    op.execute("UPDATE audit_head SET mac_from = seq + 1")


def downgrade() -> None:
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("mac")
        batch_op.drop_column("mac_key")
        batch_op.drop_column("mac_from")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("mac")
        batch_op.drop_column("mac_key")
        batch_op.drop_column("mac_version")
