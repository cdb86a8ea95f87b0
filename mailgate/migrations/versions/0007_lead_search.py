"""lead list: search text per lead (kept by triggers), indexes for the list's sort orders

Revision ID: 0007_lead_search
Revises: 0006_signed_links

``lead_search`` holds one lower-cased line per lead: customer name, e-mail,
phone as typed, phone in E.164 digits, VIN, listing and stock number.  The
list's free-text search scans this narrow table instead of decoding the
vehicle JSON of every lead.  Database triggers keep it current whoever writes
the lead or its customer (the pipeline's plain INSERTs, the detail page's
edits, customer matching), so no writer has to remember it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Every SQL string here is built from constants of this module (no user input).
# ruff: noqa: S608

revision = "0007_lead_search"
down_revision = "0006_signed_links"
branch_labels = None
depends_on = None

VEHICLE_KEYS = ("vin", "listing_id", "stock_number")
INDEXES = (
    ("ix_lead_received_at_id", ["received_at", "id"]),
    ("ix_lead_last_activity_at", ["last_activity_at", "id"]),
    # covering the list's filters and the scope, so counts never touch the wide lead rows
    (
        "ix_lead_list",
        [
            "status",
            "assignee_id",
            "kind",
            "escalation_stage",
            "soon_at",
            "overdue_at",
            "source",
            "received_at",
            "category",
            "location",
            "confidence",
        ],
    ),
    ("ix_lead_source", ["source"]),
)


def search_expression(dialect: str) -> str:
    """SQL of the search line of lead ``l`` with its customer ``c`` (LEFT JOIN)."""
    if dialect == "postgresql":
        vehicle = [f"(l.vehicle ->> '{key}')" for key in VEHICLE_KEYS]
    else:
        vehicle = [f"json_extract(l.vehicle, '$.{key}')" for key in VEHICLE_KEYS]
    parts = [
        "c.name",
        "c.email",
        "c.phone",
        "replace(c.phone_e164, '+', '')",
        *vehicle,
    ]
    joined = " || ' ' || ".join(f"coalesce(CAST({p} AS TEXT), '')" for p in parts)
    return f"lower({joined})"


def _select(dialect: str, where: str) -> str:
    return (
        f"SELECT l.id, {search_expression(dialect)} FROM lead l "  # nosec B608  # constant SQL, no user input
        f"LEFT JOIN customer c ON c.id = l.customer_id WHERE {where}"
    )


UPSERT = " ON CONFLICT (lead_id) DO UPDATE SET text = excluded.text"


def _sqlite_triggers() -> list[str]:
    lead_upsert = f"INSERT INTO lead_search (lead_id, text) {_select('sqlite', 'l.id = new.id')}"
    by_customer = (
        f"UPDATE lead_search SET text = (SELECT {search_expression('sqlite')} FROM lead l "  # nosec B608  # constant SQL
        "LEFT JOIN customer c ON c.id = l.customer_id WHERE l.id = lead_search.lead_id) "
        "WHERE lead_id IN (SELECT id FROM lead WHERE customer_id = new.id)"
    )
    return [
        f"CREATE TRIGGER lead_search_insert AFTER INSERT ON lead BEGIN {lead_upsert}{UPSERT}; END",
        "CREATE TRIGGER lead_search_update AFTER UPDATE OF customer_id, vehicle ON lead "
        f"BEGIN {lead_upsert}{UPSERT}; END",
        "CREATE TRIGGER lead_search_customer AFTER UPDATE OF name, email, phone, phone_e164 "
        f"ON customer BEGIN {by_customer}; END",
    ]


# SQLite: a trigram full-text index over lead_search, so a substring search
# (LIKE '%term%', three characters or more) is an index lookup, not a scan.
SQLITE_FTS = [
    "CREATE VIRTUAL TABLE lead_search_fts USING fts5(text, content='lead_search', "
    "content_rowid='lead_id', tokenize='trigram')",
    "CREATE TRIGGER lead_search_fts_insert AFTER INSERT ON lead_search BEGIN "
    "INSERT INTO lead_search_fts (rowid, text) VALUES (new.lead_id, new.text); END",
    "CREATE TRIGGER lead_search_fts_delete AFTER DELETE ON lead_search BEGIN "
    "INSERT INTO lead_search_fts (lead_search_fts, rowid, text) "
    "VALUES ('delete', old.lead_id, old.text); END",
    "CREATE TRIGGER lead_search_fts_update AFTER UPDATE ON lead_search BEGIN "
    "INSERT INTO lead_search_fts (lead_search_fts, rowid, text) "
    "VALUES ('delete', old.lead_id, old.text); "
    "INSERT INTO lead_search_fts (rowid, text) VALUES (new.lead_id, new.text); END",
    "INSERT INTO lead_search_fts (lead_search_fts) VALUES ('rebuild')",
]


def _postgresql_triggers() -> list[str]:
    lead_upsert = (
        f"INSERT INTO lead_search (lead_id, text) {_select('postgresql', 'l.id = NEW.id')}"
    )
    by_customer = (
        "UPDATE lead_search s SET text = x.t FROM "  # nosec B608  # constant SQL
        f"(SELECT l.id, {search_expression('postgresql')} AS t FROM lead l "
        "LEFT JOIN customer c ON c.id = l.customer_id WHERE l.customer_id = NEW.id) x "
        "WHERE s.lead_id = x.id"
    )
    return [
        "CREATE FUNCTION lead_search_lead() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {lead_upsert}{UPSERT}; RETURN NULL; END $$",
        "CREATE TRIGGER lead_search_insert AFTER INSERT OR UPDATE OF customer_id, vehicle "
        "ON lead FOR EACH ROW EXECUTE FUNCTION lead_search_lead()",
        "CREATE FUNCTION lead_search_customer() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {by_customer}; RETURN NULL; END $$",
        "CREATE TRIGGER lead_search_customer AFTER UPDATE OF name, email, phone, phone_e164 "
        "ON customer FOR EACH ROW EXECUTE FUNCTION lead_search_customer()",
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "lead_search",
        sa.Column("lead_id", sa.Integer(), sa.ForeignKey("lead.id"), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False, server_default=""),
    )
    for name, columns in INDEXES:
        op.create_index(name, "lead", columns)
    op.execute(f"INSERT INTO lead_search (lead_id, text) {_select(dialect, '1 = 1')}")
    if dialect == "postgresql":
        statements = _postgresql_triggers()
    else:
        statements = _sqlite_triggers() + SQLITE_FTS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS lead_search_customer ON customer")
        op.execute("DROP TRIGGER IF EXISTS lead_search_insert ON lead")
        op.execute("DROP FUNCTION IF EXISTS lead_search_customer()")
        op.execute("DROP FUNCTION IF EXISTS lead_search_lead()")
    else:
        for trigger in (
            "lead_search_fts_update",
            "lead_search_fts_delete",
            "lead_search_fts_insert",
            "lead_search_customer",
            "lead_search_update",
            "lead_search_insert",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS lead_search_fts")
    for name, _columns in reversed(INDEXES):
        op.drop_index(name, table_name="lead")
    op.drop_table("lead_search")
