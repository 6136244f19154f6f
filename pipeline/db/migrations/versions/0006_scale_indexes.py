"""Scale: indexes that keep the periodic and operator queries flat as the tables grow, and planner statistics.

Each partial index holds only the rows a query looks for (due retries, the batch backlog, failures), so its
size follows the work, not the history. On PostgreSQL the planner also gets a joint (stage, status)
statistics object and a longer list of common companies on ``session_import``: ``livedash status`` reads its
large counts from them instead of counting millions of rows (see ``pipeline/db/estimates.py``).

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None

#: (index, table, columns, partial predicate or None)
INDEXES = (
    ("ix_session_import_derive_retry", "session_import", ["derive_next_attempt_at"],
     "derive_status = 'FAILED' AND derive_next_attempt_at IS NOT NULL"),
    ("ix_session_import_derive_failed", "session_import", ["updated_at", "id"], "derive_status = 'FAILED'"),
    ("ix_session_processing_status_retry", "session_processing_status", ["next_attempt_at"],
     "status = 'FAILED' AND next_attempt_at IS NOT NULL"),
    ("ix_session_processing_status_failed_at", "session_processing_status", ["completed_at", "id"],
     "status = 'FAILED'"),
    ("ix_ai_processing_request_batch_backlog", "ai_processing_request", ["requested_at", "id"],
     "processing_status = 'PENDING_BATCHING' AND batch_id IS NULL"),
    ("ix_ai_processing_request_dead", "ai_processing_request", ["completed_at"],
     "processing_status = 'PROCESSING_FAILED' AND total_cost_eur = 0"),
    ("ix_ai_batch_request_open", "ai_batch_request", ["status", "created_at"],
     "status IN ('PENDING', 'UPLOADING', 'VALIDATING', 'IN_PROGRESS', 'FINALIZING', 'COMPLETED', "
     "'CANCELLED')"),
    ("ix_ai_batch_request_created_at", "ai_batch_request", ["created_at", "id"], None),
    ("ix_ai_batch_request_closed", "ai_batch_request", ["completed_at"],
     "status IN ('PROCESSED', 'FAILED') AND input_file_id IS NOT NULL"),
    ("ix_csv_row_error_created_at", "csv_row_error", ["created_at", "id"], None),
    ("ix_csv_fetch_started_at", "csv_fetch", ["started_at"], None),
)  # fmt: skip

#: Companies whose share of ``session_import`` the planner tracks (PostgreSQL's default is 100).
COMPANY_STATISTICS_TARGET = 1000


def upgrade() -> None:
    for name, table, columns, where in INDEXES:
        predicate = sa.text(where) if where else None
        op.create_index(name, table, columns, postgresql_where=predicate, sqlite_where=predicate)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE STATISTICS session_processing_status_stage_status (mcv) "
            "ON stage, status FROM session_processing_status"
        )
        op.execute(
            f"ALTER TABLE session_import ALTER COLUMN company_id SET STATISTICS {COMPANY_STATISTICS_TARGET}"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE session_import ALTER COLUMN company_id SET STATISTICS -1")
        op.execute("DROP STATISTICS session_processing_status_stage_status")
    for name, table, _columns, _where in reversed(INDEXES):
        op.drop_index(name, table_name=table)
