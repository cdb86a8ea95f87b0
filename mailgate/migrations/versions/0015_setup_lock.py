"""First-admin set-up lock: a database that has an admin counts as set up for good

Revision ID: 0015_setup_lock
Revises: 0014_sent_folder

The one-time set-up page is open only while no admin was ever created
(``mailgate.setup_lock``); the fact is an ``app_secret`` row written with the
first admin.  Databases from before that row existed get it here when any
user has the admin role, so demoting or deactivating every admin later can
never reopen the page.  Data only: no table changes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0015_setup_lock"
down_revision = "0014_sent_folder"
branch_labels = None
depends_on = None

FLAG = "setup.admin-created"  # mailgate.setup_lock.ADMIN_CREATED (a migration stays as written)


def upgrade() -> None:
    bind = op.get_bind()
    has_admin = bind.execute(sa.text("SELECT 1 FROM app_user WHERE role = 'admin' LIMIT 1")).first()
    flagged = bind.execute(
        sa.text("SELECT 1 FROM app_secret WHERE name = :name"), {"name": FLAG}
    ).first()
    if has_admin and not flagged:
        now = datetime.now(UTC)
        app_secret = sa.table(
            "app_secret",
            sa.column("name", sa.String),
            sa.column("value", sa.String),
            sa.column("created_at", sa.DateTime(timezone=True)),
        )
        bind.execute(app_secret.insert().values(name=FLAG, value=now.isoformat(), created_at=now))


def downgrade() -> None:
    pass  # the row is harmless to older code, and removing it could reopen the set-up page
