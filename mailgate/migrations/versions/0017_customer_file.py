"""customer file: merged customers, "please check" duplicates, a wider lead search line

Revision ID: 0017_customer_file
Revises: 0016_seed_rules

* ``customer.merged_into_id`` / ``merged_at``: a customer merged into another
  stays as a row (old protocol lines name him) but owns no lead and leaves
  every list; his id leads to the survivor.
* ``customer.check_since`` / ``check_candidates``: a mailed lead whose customer
  was only *similar* to a known one (same postcode, similar name) gets a new
  customer plus a "please check" task, decided by a person (update / keep /
  new) instead of silently.
* The search line of ``lead_search`` (migration 0007) gains make, model,
  licence plate (``vehicle.plate`` / ``licence_plate`` or ``extras.plate``,
  where the parsers keep a plate) and the source's own lead number, so the
  list finds a lead by them; triggers are re-created with the wider line and
  every row rebuilt.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Every SQL string here is built from constants of this module (no user input).
# ruff: noqa: S608

revision = "0017_customer_file"
down_revision = "0016_seed_rules"
branch_labels = None
depends_on = None

# the vehicle keys of the search line; "plate" / "licence_plate": whichever the parsers use
OLD_KEYS = ("vin", "listing_id", "stock_number")
NEW_KEYS = (*OLD_KEYS, "make", "model", "plate", "licence_plate", "license_plate")


def search_expression(dialect: str, keys: tuple[str, ...], source_ref: bool) -> str:
    """SQL of the search line of lead ``l`` with its customer ``c`` (LEFT JOIN)."""
    if dialect == "postgresql":
        vehicle = [f"(l.vehicle ->> '{key}')" for key in keys]
    else:
        vehicle = [f"json_extract(l.vehicle, '$.{key}')" for key in keys]
    parts = ["c.name", "c.email", "c.phone", "replace(c.phone_e164, '+', '')", *vehicle]
    if source_ref:  # the wider line: the source's lead number, a plate kept in the extras
        plate = (
            "(l.extras ->> 'plate')"
            if dialect == "postgresql"
            else "json_extract(l.extras, '$.plate')"
        )
        parts += ["l.source_ref", plate]
    joined = " || ' ' || ".join(f"coalesce(CAST({p} AS TEXT), '')" for p in parts)
    return f"lower({joined})"


UPSERT = " ON CONFLICT (lead_id) DO UPDATE SET text = excluded.text"


def _select(expression: str, where: str) -> str:
    return (
        f"SELECT l.id, {expression} FROM lead l "  # nosec B608  # constant SQL
        f"LEFT JOIN customer c ON c.id = l.customer_id WHERE {where}"
    )


def _sqlite_triggers(expression: str, lead_columns: str) -> list[str]:
    lead_upsert = f"INSERT INTO lead_search (lead_id, text) {_select(expression, 'l.id = new.id')}"
    by_customer = (
        f"UPDATE lead_search SET text = (SELECT {expression} FROM lead l "  # nosec B608
        "LEFT JOIN customer c ON c.id = l.customer_id WHERE l.id = lead_search.lead_id) "
        "WHERE lead_id IN (SELECT id FROM lead WHERE customer_id = new.id)"
    )
    return [
        f"CREATE TRIGGER lead_search_insert AFTER INSERT ON lead BEGIN {lead_upsert}{UPSERT}; END",
        f"CREATE TRIGGER lead_search_update AFTER UPDATE OF {lead_columns} ON lead "
        f"BEGIN {lead_upsert}{UPSERT}; END",
        "CREATE TRIGGER lead_search_customer AFTER UPDATE OF name, email, phone, phone_e164 "
        f"ON customer BEGIN {by_customer}; END",
    ]


def _postgresql_triggers(expression: str, lead_columns: str) -> list[str]:
    lead_upsert = f"INSERT INTO lead_search (lead_id, text) {_select(expression, 'l.id = NEW.id')}"
    by_customer = (
        "UPDATE lead_search s SET text = x.t FROM "  # nosec B608  # constant SQL
        f"(SELECT l.id, {expression} AS t FROM lead l "
        "LEFT JOIN customer c ON c.id = l.customer_id WHERE l.customer_id = NEW.id) x "
        "WHERE s.lead_id = x.id"
    )
    return [
        "CREATE OR REPLACE FUNCTION lead_search_lead() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {lead_upsert}{UPSERT}; RETURN NULL; END $$",
        f"CREATE TRIGGER lead_search_insert AFTER INSERT OR UPDATE OF {lead_columns} "
        "ON lead FOR EACH ROW EXECUTE FUNCTION lead_search_lead()",
        "CREATE OR REPLACE FUNCTION lead_search_customer() RETURNS trigger LANGUAGE plpgsql "
        f"AS $$ BEGIN {by_customer}; RETURN NULL; END $$",
        "CREATE TRIGGER lead_search_customer AFTER UPDATE OF name, email, phone, phone_e164 "
        "ON customer FOR EACH ROW EXECUTE FUNCTION lead_search_customer()",
    ]


def _drop_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS lead_search_customer ON customer")
        op.execute("DROP TRIGGER IF EXISTS lead_search_insert ON lead")
    else:
        for trigger in ("lead_search_customer", "lead_search_update", "lead_search_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")


def _install(dialect: str, keys: tuple[str, ...], source_ref: bool) -> None:
    """(Re-)create the triggers with this search line and rebuild every row of it."""
    expression = search_expression(dialect, keys, source_ref)
    lead_columns = (
        "customer_id, vehicle, source_ref, extras" if source_ref else "customer_id, vehicle"
    )
    _drop_triggers(dialect)
    if dialect == "postgresql":
        statements = _postgresql_triggers(expression, lead_columns)
    else:
        statements = _sqlite_triggers(expression, lead_columns)
    for statement in statements:
        op.execute(statement)
    # rebuild: UPDATE (not DELETE + INSERT) so SQLite's FTS triggers follow row by row
    op.execute(
        f"UPDATE lead_search SET text = (SELECT {expression} FROM lead l "  # nosec B608
        "LEFT JOIN customer c ON c.id = l.customer_id WHERE l.id = lead_search.lead_id)"
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("check_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("check_candidates", sa.JSON(), nullable=True))
    op.create_index("ix_customer_merged_into_id", "customer", ["merged_into_id"])
    op.create_index("ix_customer_check_since", "customer", ["check_since"])
    op.create_index("ix_customer_postcode", "customer", ["postcode"])
    _install(dialect, NEW_KEYS, source_ref=True)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _install(dialect, OLD_KEYS, source_ref=False)
    op.drop_index("ix_customer_postcode", table_name="customer")
    op.drop_index("ix_customer_check_since", table_name="customer")
    op.drop_index("ix_customer_merged_into_id", table_name="customer")
    # plain ALTER TABLE (SQLite 3.35+): batch mode would copy the customer table, which
    # the leads' foreign key refuses while foreign keys are enforced
    for column in ("check_candidates", "check_since", "merged_at", "merged_into_id"):
        op.execute(f"ALTER TABLE customer DROP COLUMN {column}")
