"""protocol lines as phrase codes with parameters (``protocol_entry.params``)

Revision ID: 0008_protocol_params
Revises: 0007_lead_search

Protocol lines were English sentences, shown as such in the German web UI.
From now on each line also stores its phrases as JSON (code + values; see
:mod:`mailgate.protocol`) so every reader words them in its own language.
Existing lines whose English fits one phrase whole are converted; the rest
keep their English text (``params`` stays NULL and the UI shows ``detail``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailgate.protocol import legacy_phrases

revision = "0008_protocol_params"
down_revision = "0007_lead_search"
branch_labels = None
depends_on = None

CHUNK = 1000


def upgrade() -> None:
    with op.batch_alter_table("protocol_entry") as batch:
        batch.add_column(sa.Column("params", sa.JSON(), nullable=True))
    convert(op.get_bind())


def convert(bind: sa.engine.Connection) -> None:
    """Give every line without phrases the phrases its English text says, where one fits."""
    entries = sa.table(
        "protocol_entry",
        sa.column("id", sa.Integer),
        sa.column("detail", sa.Text),
        sa.column("params", sa.JSON),
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(entries.c.id, entries.c.detail)
            .where(entries.c.id > last, entries.c.params.is_(None))
            .order_by(entries.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        converted = [
            {"b_id": r.id, "b_params": [p.to_json() for p in found]}
            for r in rows
            if (found := legacy_phrases(r.detail or ""))
        ]
        if converted:
            bind.execute(
                entries.update()
                .where(entries.c.id == sa.bindparam("b_id"))
                .values(params=sa.bindparam("b_params")),
                converted,
            )


def downgrade() -> None:
    with op.batch_alter_table("protocol_entry") as batch:
        batch.drop_column("params")
