"""Answer templates: the dealer's ready-made answers to customers (issue 17 item 8)

Revision ID: 0018_answer_templates
Revises: 0017_customer_file

Several named texts per language that a salesperson picks on the lead page
to start an answer (seed 001's lead e-mail template).  A table rather than
files in the settings document: salespeople's supervisors and admins edit
them in the web UI, and each is checked in the mail sandbox when saved.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_answer_templates"
down_revision = "0017_customer_file"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answer_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "language", name="uq_answer_template_name"),
    )


def downgrade() -> None:
    op.drop_table("answer_template")
