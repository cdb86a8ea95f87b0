"""web UI: session secret, failed logins for throttling, lead close reason and time

Revision ID: 0005_webui
Revises: 0004_escalation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_webui"
down_revision = "0004_escalation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lead") as batch:
        batch.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("close_reason", sa.String(length=64), nullable=True))
    op.create_table(
        "app_secret",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failure_email_at", "login_failure", ["email", "at"])
    op.create_index("ix_login_failure_ip_at", "login_failure", ["ip", "at"])


def downgrade() -> None:
    op.drop_index("ix_login_failure_ip_at", table_name="login_failure")
    op.drop_index("ix_login_failure_email_at", table_name="login_failure")
    op.drop_table("login_failure")
    op.drop_table("app_secret")
    with op.batch_alter_table("lead") as batch:
        batch.drop_column("close_reason")
        batch.drop_column("closed_at")
