"""Sent-folder reply detection: cursor/status per user folder, answers counted once

Revision ID: 0014_sent_folder
Revises: 0013_source_feedback

(Planned as 0012 after 0011; 0013_source_feedback took 0011 as its parent
meanwhile, so this one follows it: one head, and a database already at 0013
still gets these tables.)

A salesperson who answers a lead from his own mail client, without the
tracking address, is recognised from his IMAP Sent folder (issue 9).  The
watcher keeps a UIDVALIDITY-aware cursor per user and folder, and one row per
(user, sent Message-ID, lead) it counted, so a re-read never counts twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_sent_folder"
down_revision = "0013_source_feedback"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sent_folder_state",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("app_user.id"), nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "folder"),
    )
    op.create_table(
        "sent_folder_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("app_user.id"), nullable=False),
        sa.Column("message_key", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("lead_id", sa.Integer(), sa.ForeignKey("lead.id"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "message_key", "lead_id", name="uq_sent_folder_answer_key"),
    )
    op.create_index("ix_sent_folder_answer_lead_id", "sent_folder_answer", ["lead_id"])


def downgrade() -> None:
    op.drop_index("ix_sent_folder_answer_lead_id", table_name="sent_folder_answer")
    op.drop_table("sent_folder_answer")
    op.drop_table("sent_folder_state")
