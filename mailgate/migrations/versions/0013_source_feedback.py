"""status feedback to the source: the source's own lead number, call-centre takeover

Revision ID: 0013_source_feedback
Revises: 0011_manual_leads

OEM lead systems expect to hear back about their leads (seeds 000, 003): the
feedback names the OEM's lead number (``source_ref``), and a later mail of the
OEM saying its call centre took the lead over is matched by it; such a lead
becomes read-only (``handed_over_at``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_source_feedback"
down_revision = "0011_manual_leads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lead") as batch:
        batch.add_column(sa.Column("source_ref", sa.String(64), nullable=True))
        batch.add_column(sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_lead_source_ref", ["source_ref"])


def downgrade() -> None:
    with op.batch_alter_table("lead") as batch:
        batch.drop_index("ix_lead_source_ref")
        batch.drop_column("handed_over_at")
        batch.drop_column("source_ref")
