"""IMAP intake: cursor/status per mailbox folder and the import idempotency keys

Revision ID: 0002_imap
Revises: 0001
Create Date: 2026-11-30 01:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_imap"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_state",
        sa.Column("mailbox", sa.String(length=64), nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("imported_day", sa.String(length=10), nullable=True),
        sa.Column("imported_today", sa.Integer(), nullable=False),
        sa.Column("imported_total", sa.BigInteger(), nullable=False),
        sa.Column("oversize_reported", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("mailbox", "folder"),
    )
    op.create_table(
        "imap_imported",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mailbox", "sha256", name="uq_imap_imported_key"),
    )


def downgrade() -> None:
    op.drop_table("imap_imported")
    op.drop_table("imap_state")
