"""bounces of relayed mail and content fingerprints of inquiries

Revision ID: 0019_bounces_fingerprints
Revises: 0018_answer_templates

Issue 17 items 6 and 7:

- ``outbox_mail.bounced_at`` / ``bounce_reason``: a delivery status
  notification (DSN) for a mail we relayed to a customer marks that outbox row
  undelivered (:mod:`mailgate.relay_bounces`); the lead's conversation shows it.
  ``message_id`` gets an index: a bounce is matched by it (a wave of forged
  bounces must not scan the whole outbox each).
- ``lead.fingerprint`` / ``lead_followup.fingerprint``: a hash of an inquiry's
  decoded content (:mod:`mailgate.fingerprint`), so the same inquiry delivered
  twice (another Message-ID, re-encoded by a second server) is recognised.
  Indexed: the pipeline looks it up for every mail.  Old rows keep NULL — no
  backfill: the duplicate window is days, and every inquiry stored from now
  on carries its fingerprint.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_bounces_fingerprints"
down_revision = "0018_answer_templates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_mail") as batch:
        batch.add_column(sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("bounce_reason", sa.Text(), nullable=True))
        batch.create_index("ix_outbox_mail_message_id", ["message_id"])  # what a bounce names
    with op.batch_alter_table("lead") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))
        batch.create_index("ix_lead_fingerprint", ["fingerprint"])
    with op.batch_alter_table("lead_followup") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))
        batch.create_index("ix_lead_followup_fingerprint", ["fingerprint"])


def downgrade() -> None:
    # plain DROP COLUMN (SQLite >= 3.35): a batch rebuild of ``lead`` would trip over
    # the lead-search triggers of 0007 that name it
    op.drop_index("ix_lead_followup_fingerprint", table_name="lead_followup")
    op.drop_column("lead_followup", "fingerprint")
    op.drop_index("ix_lead_fingerprint", table_name="lead")
    op.drop_column("lead", "fingerprint")
    op.drop_index("ix_outbox_mail_message_id", table_name="outbox_mail")
    op.drop_column("outbox_mail", "bounce_reason")
    op.drop_column("outbox_mail", "bounced_at")
