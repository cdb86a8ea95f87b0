"""sales ladder: when a lead first reached test drive, offer and contract

Revision ID: 0009_sales_ladder
Revises: 0008_protocol_params

The statuses ``test_drive``, ``offer`` and ``contract`` need no schema change
(``lead.status`` is text); the reports' ladder counts how many leads reached
each rung, so the first time is kept per rung (``contacted`` is the existing
``first_response_at``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_sales_ladder"
down_revision = "0008_protocol_params"
branch_labels = None
depends_on = None

RUNGS = ("test_drive_at", "offer_at", "contract_at")


def upgrade() -> None:
    with op.batch_alter_table("lead") as batch:
        for name in RUNGS:
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lead") as batch:
        for name in reversed(RUNGS):
            batch.drop_column(name)
