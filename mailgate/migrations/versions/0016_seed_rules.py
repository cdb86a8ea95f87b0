"""seed rules: processing target, contact follow-up, linked OEM leads, call-centre hand-back

Revision ID: 0016_seed_rules
Revises: 0015_setup_lock

Issue 20's contradictions with the seed manuals:

- a qualification (hot / warm / cold, seed 004) sets a processing target of its
  own (``target_at``) instead of moving the first-response deadline; the
  assignee is mailed once when it is missed (``target_mailed_at``);
- a logged call that did not reach the customer schedules a follow-up
  (``follow_up_at``) instead of counting as the answer;
- a second OEM lead of a customer with an open lead is its own lead, linked to
  the open one (``linked_lead_id``: a plain reference, not a foreign key, so
  adding it never rebuilds the table on SQLite and deleting a lead is not
  blocked by a link);
- a lead taken over by the source's call centre can be handed back
  (``handed_back_at``), and the lead list filters by it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_seed_rules"
down_revision = "0015_setup_lock"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lead") as batch:
        batch.add_column(sa.Column("target_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("target_mailed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("follow_up_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("linked_lead_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("handed_back_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_lead_target_at", ["target_at"])
        batch.create_index("ix_lead_linked_lead_id", ["linked_lead_id"])


def downgrade() -> None:
    # plain DROP COLUMN (SQLite 3.35+), not a batch: rebuilding the table on SQLite would
    # break the lead_search triggers of 0007/0017 that name it
    op.drop_index("ix_lead_linked_lead_id", table_name="lead")
    op.drop_index("ix_lead_target_at", table_name="lead")
    for column in ("handed_back_at", "linked_lead_id", "follow_up_at", "target_mailed_at"):
        op.drop_column("lead", column)
    op.drop_column("lead", "target_at")
