"""escalation state on leads; outbox mails rendered at send time

Revision ID: 0004_escalation
Revises: 0003_distribution
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_escalation"
down_revision = "0003_distribution"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lead") as batch:
        batch.add_column(sa.Column("stage2_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("escalation_stage", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("qualification", sa.String(length=8), nullable=True))
    with op.batch_alter_table("outbox_mail") as batch:
        batch.alter_column("raw", existing_type=sa.LargeBinary(), nullable=True)
        batch.add_column(sa.Column("template", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("render", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_mail") as batch:
        batch.drop_column("render")
        batch.drop_column("template")
        batch.alter_column("raw", existing_type=sa.LargeBinary(), nullable=False)
    with op.batch_alter_table("lead") as batch:
        batch.drop_column("qualification")
        batch.drop_column("escalation_stage")
        batch.drop_column("stage2_at")
