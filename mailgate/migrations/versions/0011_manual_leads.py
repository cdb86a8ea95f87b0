"""manual leads: campaign and extras on the lead, the customer's date of birth

Revision ID: 0011_manual_leads
Revises: 0010_api

A lead typed in by hand (walk-in, phone call; seed 004) records its origin
detail as the campaign (also what OEM sources name), the next vehicle's usage
and the customer's interests in ``extras``, and the prospect's date of birth.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_manual_leads"
down_revision = "0010_api"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lead") as batch:
        batch.add_column(sa.Column("campaign", sa.String(128), nullable=True))
        batch.add_column(sa.Column("extras", sa.JSON(), nullable=True))
        batch.create_index("ix_lead_campaign", ["campaign"])
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("birth_date", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("birth_date")
    with op.batch_alter_table("lead") as batch:
        batch.drop_index("ix_lead_campaign")
        batch.drop_column("extras")
        batch.drop_column("campaign")
