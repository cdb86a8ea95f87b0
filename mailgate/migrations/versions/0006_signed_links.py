"""signed mail links: the ids of links that have acted (each acts once)

Revision ID: 0006_signed_links
Revises: 0005_webui
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_signed_links"
down_revision = "0005_webui"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signed_link_use",
        sa.Column("token_id", sa.String(length=64), primary_key=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("signed_link_use")
