"""the lead list as each user left it: columns and page size

Revision ID: 0020_list_prefs
Revises: 0019_bounces_fingerprints

Issue 20 item 13 (seeds 001, 004: a list the salesperson arranges): which
optional columns a user shows and how many leads a page holds, remembered on
the user (``app_user.list_prefs``, JSON, NULL = the defaults).  A preference,
not a setting: it is not part of the settings export.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_list_prefs"
down_revision = "0019_bounces_fingerprints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(sa.Column("list_prefs", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("list_prefs")
