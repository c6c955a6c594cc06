"""One head again: the domain branches (console, security, GitOps + SOPs) join, so what changes every
table (tenants, claims) follows one line

Revision ID: 0009_one_head
Revises: 0006_audit_mac, 0006_git_sops, 0008_host_ssh
Create Date: 2026-12-08 01:00:00
"""

revision = "0009_one_head"
down_revision = ("0006_audit_mac", "0006_git_sops", "0008_host_ssh")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: a merge point."""


def downgrade() -> None:
    """Nothing to change: a merge point."""
