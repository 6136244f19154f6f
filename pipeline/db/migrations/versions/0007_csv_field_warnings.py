"""CSV field warnings: a stored row's unreadable field is recorded beside the refused rows.

``csv_row_error`` gets a ``kind`` (``ERROR``: the row was refused; ``WARNING``: the row was stored with one
field null or decoded by fallback) and the ``column_name`` a warning is about; existing rows are errors. One
table rather than two: operators read, page, retain and delete both together (``livedash imports errors``,
retention, company deletion). ``csv_fetch.field_warnings`` counts a fetch's warnings, stored or not.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("csv_row_error", schema=None) as batch_op:
        # The non-native enum as its column and its named check, added apart: SQLite's batch mode would
        # otherwise write the check before the column exists.
        batch_op.add_column(sa.Column("kind", sa.String(length=7), server_default="ERROR", nullable=False))
        batch_op.add_column(sa.Column("column_name", sa.Text(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_csv_row_error_csv_row_problem"), "kind IN ('ERROR', 'WARNING')"
        )
    with op.batch_alter_table("csv_fetch", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("field_warnings", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.create_check_constraint(op.f("ck_csv_fetch_field_warnings_nonneg"), "field_warnings >= 0")


def downgrade() -> None:
    with op.batch_alter_table("csv_fetch", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_csv_fetch_field_warnings_nonneg"), type_="check")
        batch_op.drop_column("field_warnings")
    with op.batch_alter_table("csv_row_error", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_csv_row_error_csv_row_problem"), type_="check")
        batch_op.drop_column("column_name")
        batch_op.drop_column("kind")
