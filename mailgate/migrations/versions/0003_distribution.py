"""distribution: rotation state, follow-up mails, lead location/category, match keys

Revision ID: 0003_distribution
Revises: 0002_imap
Create Date: 2026-11-30 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_distribution"
down_revision = "0002_imap"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "distribution_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("pointers", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "lead_followup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("inbound_id", sa.Integer(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["inbound_id"], ["inbound_mail.id"]),
        sa.ForeignKeyConstraint(["lead_id"], ["lead.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
        sa.UniqueConstraint("inbound_id"),
    )
    with op.batch_alter_table("lead_followup", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_followup_lead_id"), ["lead_id"], unique=False)
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.add_column(sa.Column("location", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("category", sa.String(length=32), nullable=False, server_default="sales")
        )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("permissions", sa.JSON(), nullable=False, server_default="{}")
        )
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("match_name", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("match_street", sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f("ix_customer_match_name"), ["match_name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_match_name"))
        batch_op.drop_column("match_street")
        batch_op.drop_column("match_name")
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.drop_column("category")
        batch_op.drop_column("location")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("permissions")
    with op.batch_alter_table("lead_followup", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_followup_lead_id"))
    op.drop_table("lead_followup")
    op.drop_table("distribution_state")
