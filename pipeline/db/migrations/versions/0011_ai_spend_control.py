"""AI spend under control: monthly budgets and their ledger, reusable analyses, batches across companies.

* ``company_ai_budget``: a company's monthly budget (NULL: unlimited; no row: the configured default).
* ``company_ai_spend``: per company and month, what is reserved by requests in flight and what was spent.
* ``ai_processing_request``: the analysis key and kept answer (reuse), the estimated prompt tokens and the
  reservation of each request.
* ``ai_batch_request``: a batch may hold several companies' requests (``company_id`` NULL) and counts its
  estimated tokens against the enqueued-token limit.

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None

EUR = sa.Numeric(18, 9)


def upgrade() -> None:
    op.create_table(
        "company_ai_budget",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("monthly_eur", sa.Numeric(12, 2), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "monthly_eur IS NULL OR monthly_eur >= 0", name=op.f("ck_company_ai_budget_monthly_nonneg")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_company_ai_budget_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_company_ai_budget")),
    )
    op.create_table(
        "company_ai_spend",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("reserved_eur", EUR, nullable=False),
        sa.Column("spent_eur", EUR, nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint("reserved_eur >= 0", name=op.f("ck_company_ai_spend_reserved_nonneg")),
        sa.CheckConstraint("spent_eur >= 0", name=op.f("ck_company_ai_spend_spent_nonneg")),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_company_ai_spend_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "month", name=op.f("pk_company_ai_spend")),
    )
    with op.batch_alter_table("ai_processing_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("analysis_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("answer", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")))
        batch_op.add_column(
            sa.Column("estimated_prompt_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("reserved_eur", EUR, server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("reserved_month", sa.Date(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_ai_processing_request_estimated_prompt_tokens_nonneg"),
            sa.text("estimated_prompt_tokens >= 0"),
        )
        batch_op.create_check_constraint(
            op.f("ck_ai_processing_request_reserved_eur_nonneg"), sa.text("reserved_eur >= 0")
        )
    with op.batch_alter_table("ai_batch_request", schema=None) as batch_op:
        batch_op.alter_column("company_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(
            sa.Column("enqueued_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_ai_batch_request_enqueued_tokens_nonneg"), sa.text("enqueued_tokens >= 0")
        )


def downgrade() -> None:
    with op.batch_alter_table("ai_batch_request", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ai_batch_request_enqueued_tokens_nonneg"), type_="check")
        batch_op.drop_column("enqueued_tokens")
    # Batches of several companies have no single company to go back to: they are closed history, dropped.
    op.execute("DELETE FROM ai_batch_request WHERE company_id IS NULL")
    with op.batch_alter_table("ai_batch_request", schema=None) as batch_op:
        batch_op.alter_column("company_id", existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table("ai_processing_request", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ai_processing_request_reserved_eur_nonneg"), type_="check")
        batch_op.drop_constraint(
            op.f("ck_ai_processing_request_estimated_prompt_tokens_nonneg"), type_="check"
        )
        batch_op.drop_column("reserved_month")
        batch_op.drop_column("reserved_eur")
        batch_op.drop_column("estimated_prompt_tokens")
        batch_op.drop_column("answer")
        batch_op.drop_column("analysis_key")
    op.drop_table("company_ai_spend")
    op.drop_table("company_ai_budget")
