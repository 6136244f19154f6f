"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_model",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("max_tokens", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "max_tokens IS NULL OR max_tokens > 0", name=op.f("ck_ai_model_max_tokens_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_model")),
        sa.UniqueConstraint("name", name=op.f("uq_ai_model_name")),
    )
    with op.batch_alter_table("ai_model", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ai_model_provider_ai_model_is_active"), ["provider", "is_active"], unique=False
        )

    op.create_table(
        "company",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "ACTIVE",
                "SUSPENDED",
                "TRIAL",
                "ARCHIVED",
                name="company_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("csv_url", sa.Text(), nullable=False),
        sa.Column("csv_username", sa.String(length=255), nullable=True),
        sa.Column("csv_password_encrypted", sa.Text(), nullable=True),
        sa.Column(
            "dashboard_opts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("max_users", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_company")),
    )
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_company_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_company_region"), ["region"], unique=False)
        batch_op.create_index(batch_op.f("ix_company_status"), ["status"], unique=False)

    op.create_table(
        "question",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_question")),
        sa.UniqueConstraint("content", name=op.f("uq_question_content")),
    )
    op.create_table(
        "scheduler_state",
        sa.Column("scheduler_id", sa.String(length=64), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("scheduler_id", name=op.f("pk_scheduler_state")),
    )
    op.create_table(
        "scheduler_tick",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("tick_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "ENQUEUED",
                "SKIPPED_PAUSED",
                "SKIPPED_OVERLAP",
                "SKIPPED_STALE",
                "FAILED",
                name="tick_outcome",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("instance_id", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_tick")),
        sa.UniqueConstraint("job", "tick_at", name=op.f("uq_scheduler_tick_job_tick_at")),
    )
    op.create_table(
        "ai_batch_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("openai_batch_id", sa.Text(), nullable=True),
        sa.Column("input_file_id", sa.Text(), nullable=True),
        sa.Column("output_file_id", sa.Text(), nullable=True),
        sa.Column("error_file_id", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "UPLOADING",
                "VALIDATING",
                "IN_PROGRESS",
                "FINALIZING",
                "COMPLETED",
                "PROCESSED",
                "FAILED",
                "CANCELLED",
                name="ai_batch_request_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("request_count", sa.Integer(), nullable=False),
        sa.Column("completed_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("total_cost_eur", sa.Float(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("request_count >= 0", name=op.f("ck_ai_batch_request_request_count_nonneg")),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_ai_batch_request_company_id_company"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_batch_request")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ai_batch_request_idempotency_key")),
        sa.UniqueConstraint("openai_batch_id", name=op.f("uq_ai_batch_request_openai_batch_id")),
    )
    with op.batch_alter_table("ai_batch_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ai_batch_request_company_id_ai_batch_request_status"),
            ["company_id", "status"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_ai_batch_request_status_ai_batch_request_created_at"),
            ["status", "created_at"],
            unique=False,
        )

    op.create_table(
        "ai_model_pricing",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ai_model_id", sa.Uuid(), nullable=False),
        sa.Column("prompt_token_cost", sa.Float(), nullable=False),
        sa.Column("completion_token_cost", sa.Float(), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "effective_until IS NULL OR effective_until > effective_from",
            name=op.f("ck_ai_model_pricing_effective_range"),
        ),
        sa.CheckConstraint(
            "prompt_token_cost >= 0 AND completion_token_cost >= 0",
            name=op.f("ck_ai_model_pricing_costs_nonneg"),
        ),
        sa.ForeignKeyConstraint(
            ["ai_model_id"],
            ["ai_model.id"],
            name=op.f("fk_ai_model_pricing_ai_model_id_ai_model"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_model_pricing")),
    )
    with op.batch_alter_table("ai_model_pricing", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ai_model_pricing_ai_model_id_ai_model_pricing_effective_from"),
            ["ai_model_id", "effective_from"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_ai_model_pricing_effective_from_ai_model_pricing_effective_until"),
            ["effective_from", "effective_until"],
            unique=False,
        )

    op.create_table(
        "company_ai_model",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("ai_model_id", sa.Uuid(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["ai_model_id"],
            ["ai_model.id"],
            name=op.f("fk_company_ai_model_ai_model_id_ai_model"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_company_ai_model_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_company_ai_model")),
        sa.UniqueConstraint(
            "company_id", "ai_model_id", name=op.f("uq_company_ai_model_company_id_ai_model_id")
        ),
    )
    with op.batch_alter_table("company_ai_model", schema=None) as batch_op:
        batch_op.create_index(
            "uq_company_ai_model_default",
            ["company_id"],
            unique=True,
            postgresql_where=sa.text("is_default"),
            sqlite_where=sa.text("is_default"),
        )

    op.create_table(
        "csv_fetch",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "RUNNING",
                "IMPORTED",
                "UNCHANGED",
                "FAILED",
                name="csv_fetch_outcome",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_new", sa.Integer(), nullable=False),
        sa.Column("rows_changed", sa.Integer(), nullable=False),
        sa.Column("rows_duplicate", sa.Integer(), nullable=False),
        sa.Column("rows_invalid", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("rows_changed >= 0", name=op.f("ck_csv_fetch_rows_changed_nonneg")),
        sa.CheckConstraint("rows_duplicate >= 0", name=op.f("ck_csv_fetch_rows_duplicate_nonneg")),
        sa.CheckConstraint("rows_invalid >= 0", name=op.f("ck_csv_fetch_rows_invalid_nonneg")),
        sa.CheckConstraint("rows_new >= 0", name=op.f("ck_csv_fetch_rows_new_nonneg")),
        sa.CheckConstraint("rows_total >= 0", name=op.f("ck_csv_fetch_rows_total_nonneg")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name=op.f("fk_csv_fetch_company_id_company"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csv_fetch")),
    )
    with op.batch_alter_table("csv_fetch", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_csv_fetch_company_id_csv_fetch_started_at"),
            ["company_id", "started_at"],
            unique=False,
        )
        batch_op.create_index(
            "uq_csv_fetch_running_company",
            ["company_id"],
            unique=True,
            postgresql_where=sa.text("outcome = 'RUNNING'"),
            sqlite_where=sa.text("outcome = 'RUNNING'"),
        )

    op.create_table(
        "scheduler_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("tick_id", sa.Uuid(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "RUNNING",
                "SUCCEEDED",
                "FAILED",
                name="scheduler_run_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("instance_id", sa.String(length=255), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("items_processed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tick_id"],
            ["scheduler_tick.id"],
            name=op.f("fk_scheduler_run_tick_id_scheduler_tick"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_run")),
    )
    with op.batch_alter_table("scheduler_run", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scheduler_run_job_scheduler_run_started_at"), ["job", "started_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_scheduler_run_status_scheduler_run_started_at"),
            ["status", "started_at"],
            unique=False,
        )

    op.create_table(
        "session_import",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("external_session_id", sa.Text(), nullable=False),
        sa.Column("start_time_raw", sa.String(length=255), nullable=False),
        sa.Column("end_time_raw", sa.String(length=255), nullable=False),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("country_code", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=64), nullable=True),
        sa.Column("messages_sent", sa.Integer(), nullable=True),
        sa.Column("sentiment_raw", sa.String(length=50), nullable=True),
        sa.Column("escalated_raw", sa.String(length=50), nullable=True),
        sa.Column("forwarded_hr_raw", sa.String(length=50), nullable=True),
        sa.Column("full_transcript_url", sa.Text(), nullable=True),
        sa.Column("avg_response_time_seconds", sa.Float(), nullable=True),
        sa.Column("tokens", sa.Integer(), nullable=True),
        sa.Column("tokens_eur", sa.Float(), nullable=True),
        sa.Column("category", sa.String(length=255), nullable=True),
        sa.Column("initial_message", sa.Text(), nullable=True),
        sa.Column("raw_transcript_content", sa.Text(), nullable=True),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "derive_status",
            sa.Enum(
                "PENDING",
                "IN_PROGRESS",
                "COMPLETED",
                "FAILED",
                "SKIPPED",
                name="processing_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("derive_requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("derive_attempts", sa.Integer(), nullable=False),
        sa.Column("derive_lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("derive_next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("derive_error", sa.Text(), nullable=True),
        sa.Column("last_fetch_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "avg_response_time_seconds IS NULL OR avg_response_time_seconds >= 0",
            name=op.f("ck_session_import_avg_response_nonneg"),
        ),
        sa.CheckConstraint("derive_attempts >= 0", name=op.f("ck_session_import_derive_attempts_nonneg")),
        sa.CheckConstraint(
            "messages_sent IS NULL OR messages_sent >= 0", name=op.f("ck_session_import_messages_sent_nonneg")
        ),
        sa.CheckConstraint("tokens IS NULL OR tokens >= 0", name=op.f("ck_session_import_tokens_nonneg")),
        sa.CheckConstraint(
            "tokens_eur IS NULL OR tokens_eur >= 0", name=op.f("ck_session_import_tokens_eur_nonneg")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_session_import_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_import")),
        sa.UniqueConstraint(
            "company_id", "external_session_id", name=op.f("uq_session_import_company_id_external_session_id")
        ),
    )
    with op.batch_alter_table("session_import", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_import_company_id_session_import_created_at"),
            ["company_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_session_import_derive_pending",
            ["derive_status", "derive_requested_at"],
            unique=False,
            postgresql_where=sa.text("derive_status <> 'COMPLETED'"),
            sqlite_where=sa.text("derive_status <> 'COMPLETED'"),
        )
        batch_op.create_index(batch_op.f("ix_session_import_last_fetch_id"), ["last_fetch_id"], unique=False)

    op.create_table(
        "csv_row_error",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("fetch_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw_excerpt", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_csv_row_error_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["fetch_id"],
            ["csv_fetch.id"],
            name=op.f("fk_csv_row_error_fetch_id_csv_fetch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csv_row_error")),
    )
    with op.batch_alter_table("csv_row_error", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_csv_row_error_company_id_csv_row_error_created_at"),
            ["company_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_csv_row_error_fetch_id"), ["fetch_id"], unique=False)

    op.create_table(
        "session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("import_id", sa.Uuid(), nullable=True),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "ip_address", sa.String(length=45).with_variant(postgresql.INET(), "postgresql"), nullable=True
        ),
        sa.Column("country", sa.String(length=3), nullable=True),
        sa.Column("full_transcript_url", sa.Text(), nullable=True),
        sa.Column("avg_response_time", sa.Float(), nullable=True),
        sa.Column("initial_msg", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=10), nullable=True),
        sa.Column("messages_sent", sa.Integer(), nullable=True),
        sa.Column(
            "sentiment",
            sa.Enum(
                "POSITIVE",
                "NEUTRAL",
                "NEGATIVE",
                name="sentiment_category",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("escalated", sa.Boolean(), nullable=True),
        sa.Column("forwarded_hr", sa.Boolean(), nullable=True),
        sa.Column(
            "category",
            sa.Enum(
                "SCHEDULE_HOURS",
                "LEAVE_VACATION",
                "SICK_LEAVE_RECOVERY",
                "SALARY_COMPENSATION",
                "CONTRACT_HOURS",
                "ONBOARDING",
                "OFFBOARDING",
                "WORKWEAR_STAFF_PASS",
                "TEAM_CONTACTS",
                "PERSONAL_QUESTIONS",
                "ACCESS_LOGIN",
                "SOCIAL_QUESTIONS",
                "UNRECOGNIZED_OTHER",
                name="session_category",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "avg_response_time IS NULL OR avg_response_time >= 0", name=op.f("ck_session_avg_response_nonneg")
        ),
        sa.CheckConstraint("end_time >= start_time", name=op.f("ck_session_end_after_start")),
        sa.CheckConstraint(
            "messages_sent IS NULL OR messages_sent >= 0", name=op.f("ck_session_messages_sent_nonneg")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["company.id"], name=op.f("fk_session_company_id_company"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["session_import.id"],
            name=op.f("fk_session_import_id_session_import"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session")),
        sa.UniqueConstraint("import_id", name=op.f("uq_session_import_id")),
    )
    with op.batch_alter_table("session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_company_id_session_avg_response_time"),
            ["company_id", "avg_response_time"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_session_company_id_session_category"), ["company_id", "category"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_session_company_id_session_escalated"), ["company_id", "escalated"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_session_company_id_session_forwarded_hr"),
            ["company_id", "forwarded_hr"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_session_company_id_session_language"), ["company_id", "language"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_session_company_id_session_messages_sent"),
            ["company_id", "messages_sent"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_session_company_id_session_sentiment"), ["company_id", "sentiment"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_session_company_id_session_start_time"), ["company_id", "start_time"], unique=False
        )

    op.create_table(
        "ai_processing_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("openai_request_id", sa.String(length=255), nullable=True),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("service_tier", sa.String(length=50), nullable=True),
        sa.Column("system_fingerprint", sa.String(length=255), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("total_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_tokens", sa.Integer(), nullable=True),
        sa.Column("audio_tokens_prompt", sa.Integer(), nullable=True),
        sa.Column("reasoning_tokens", sa.Integer(), nullable=True),
        sa.Column("audio_tokens_completion", sa.Integer(), nullable=True),
        sa.Column("accepted_prediction_tokens", sa.Integer(), nullable=True),
        sa.Column("rejected_prediction_tokens", sa.Integer(), nullable=True),
        sa.Column("prompt_token_cost", sa.Float(), nullable=False),
        sa.Column("completion_token_cost", sa.Float(), nullable=False),
        sa.Column("total_cost_eur", sa.Float(), nullable=False),
        sa.Column("cost_known", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("processing_type", sa.String(length=100), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "requested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "processing_status",
            sa.Enum(
                "PENDING_BATCHING",
                "BATCHING_IN_PROGRESS",
                "PROCESSING_COMPLETE",
                "PROCESSING_FAILED",
                name="ai_request_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_ai_processing_request_attempts_nonneg")),
        sa.CheckConstraint(
            "completed_at IS NULL OR completed_at >= requested_at",
            name=op.f("ck_ai_processing_request_completed_after_requested"),
        ),
        sa.CheckConstraint(
            "completion_token_cost >= 0", name=op.f("ck_ai_processing_request_completion_token_cost_nonneg")
        ),
        sa.CheckConstraint(
            "completion_tokens >= 0", name=op.f("ck_ai_processing_request_completion_tokens_nonneg")
        ),
        sa.CheckConstraint(
            "prompt_token_cost >= 0", name=op.f("ck_ai_processing_request_prompt_token_cost_nonneg")
        ),
        sa.CheckConstraint("prompt_tokens >= 0", name=op.f("ck_ai_processing_request_prompt_tokens_nonneg")),
        sa.CheckConstraint(
            "total_cost_eur >= 0", name=op.f("ck_ai_processing_request_total_cost_eur_nonneg")
        ),
        sa.CheckConstraint("total_tokens >= 0", name=op.f("ck_ai_processing_request_total_tokens_nonneg")),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ai_batch_request.id"],
            name=op.f("fk_ai_processing_request_batch_id_ai_batch_request"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["session.id"],
            name=op.f("fk_ai_processing_request_session_id_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_processing_request")),
    )
    with op.batch_alter_table("ai_processing_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ai_processing_request_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ai_processing_request_model"), ["model"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ai_processing_request_processing_status_ai_processing_request_requested_at"),
            ["processing_status", "requested_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_ai_processing_request_requested_at"), ["requested_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ai_processing_request_session_id_ai_processing_request_requested_at"),
            ["session_id", "requested_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_ai_processing_request_success_ai_processing_request_requested_at"),
            ["success", "requested_at"],
            unique=False,
        )
        batch_op.create_index(
            "uq_ai_processing_request_open_session",
            ["session_id"],
            unique=True,
            postgresql_where=sa.text("processing_status IN ('PENDING_BATCHING', 'BATCHING_IN_PROGRESS')"),
            sqlite_where=sa.text("processing_status IN ('PENDING_BATCHING', 'BATCHING_IN_PROGRESS')"),
        )

    op.create_table(
        "message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("role", sa.String(length=50), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("order", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint('"order" >= 0', name=op.f("ck_message_order_nonneg")),
        sa.ForeignKeyConstraint(
            ["session_id"], ["session.id"], name=op.f("fk_message_session_id_session"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
        sa.UniqueConstraint("session_id", "order", name=op.f("uq_message_session_id_order")),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_session_id_message_role"), ["session_id", "role"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_message_session_id_message_timestamp"), ["session_id", "timestamp"], unique=False
        )

    op.create_table(
        "session_processing_status",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column(
            "stage",
            sa.Enum(
                "CSV_IMPORT",
                "TRANSCRIPT_FETCH",
                "SESSION_CREATION",
                "AI_ANALYSIS",
                "QUESTION_EXTRACTION",
                name="processing_stage",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "IN_PROGRESS",
                "COMPLETED",
                "FAILED",
                "SKIPPED",
                name="processing_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_session_processing_status_attempts_nonneg")),
        sa.CheckConstraint(
            "completed_at IS NULL OR started_at IS NULL OR completed_at >= started_at",
            name=op.f("ck_session_processing_status_completed_after_start"),
        ),
        sa.CheckConstraint("retry_count >= 0", name=op.f("ck_session_processing_status_retry_count_nonneg")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["session.id"],
            name=op.f("fk_session_processing_status_session_id_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_processing_status")),
        sa.UniqueConstraint(
            "session_id", "stage", name=op.f("uq_session_processing_status_session_id_stage")
        ),
    )
    with op.batch_alter_table("session_processing_status", schema=None) as batch_op:
        batch_op.create_index(
            "ix_session_processing_status_failed",
            ["session_id"],
            unique=False,
            postgresql_where=sa.text("status = 'FAILED'"),
            sqlite_where=sa.text("status = 'FAILED'"),
        )
        batch_op.create_index(
            batch_op.f(
                "ix_session_processing_status_stage_session_processing_status_status_session_processing_status_lease_expires_at"
            ),
            ["stage", "status", "lease_expires_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_session_processing_status_status_session_processing_status_started_at"),
            ["status", "started_at"],
            unique=False,
        )

    op.create_table(
        "session_question",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("question_id", sa.Uuid(), nullable=False),
        sa.Column("order", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["question.id"],
            name=op.f("fk_session_question_question_id_question"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["session.id"],
            name=op.f("fk_session_question_session_id_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_question")),
        sa.UniqueConstraint("session_id", "order", name=op.f("uq_session_question_session_id_order")),
        sa.UniqueConstraint(
            "session_id", "question_id", name=op.f("uq_session_question_session_id_question_id")
        ),
    )
    with op.batch_alter_table("session_question", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_question_question_id"), ["question_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("session_question", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_question_question_id"))

    op.drop_table("session_question")
    with op.batch_alter_table("session_processing_status", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_session_processing_status_status_session_processing_status_started_at")
        )
        batch_op.drop_index(
            batch_op.f(
                "ix_session_processing_status_stage_session_processing_status_status_session_processing_status_lease_expires_at"
            )
        )
        batch_op.drop_index(
            "ix_session_processing_status_failed",
            postgresql_where=sa.text("status = 'FAILED'"),
            sqlite_where=sa.text("status = 'FAILED'"),
        )

    op.drop_table("session_processing_status")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_session_id_message_timestamp"))
        batch_op.drop_index(batch_op.f("ix_message_session_id_message_role"))

    op.drop_table("message")
    with op.batch_alter_table("ai_processing_request", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_ai_processing_request_open_session",
            postgresql_where=sa.text("processing_status IN ('PENDING_BATCHING', 'BATCHING_IN_PROGRESS')"),
            sqlite_where=sa.text("processing_status IN ('PENDING_BATCHING', 'BATCHING_IN_PROGRESS')"),
        )
        batch_op.drop_index(batch_op.f("ix_ai_processing_request_success_ai_processing_request_requested_at"))
        batch_op.drop_index(
            batch_op.f("ix_ai_processing_request_session_id_ai_processing_request_requested_at")
        )
        batch_op.drop_index(batch_op.f("ix_ai_processing_request_requested_at"))
        batch_op.drop_index(
            batch_op.f("ix_ai_processing_request_processing_status_ai_processing_request_requested_at")
        )
        batch_op.drop_index(batch_op.f("ix_ai_processing_request_model"))
        batch_op.drop_index(batch_op.f("ix_ai_processing_request_batch_id"))

    op.drop_table("ai_processing_request")
    with op.batch_alter_table("session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_company_id_session_start_time"))
        batch_op.drop_index(batch_op.f("ix_session_company_id_session_sentiment"))
        batch_op.drop_index(batch_op.f("ix_session_company_id_session_messages_sent"))
        batch_op.drop_index(batch_op.f("ix_session_company_id_session_language"))
        batch_op.drop_index(batch_op.f("ix_session_company_id_session_forwarded_hr"))
        batch_op.drop_index(batch_op.f("ix_session_company_id_session_escalated"))
        batch_op.drop_index(batch_op.f("ix_session_company_id_session_category"))
        batch_op.drop_index(batch_op.f("ix_session_company_id_session_avg_response_time"))

    op.drop_table("session")
    with op.batch_alter_table("csv_row_error", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_csv_row_error_fetch_id"))
        batch_op.drop_index(batch_op.f("ix_csv_row_error_company_id_csv_row_error_created_at"))

    op.drop_table("csv_row_error")
    with op.batch_alter_table("session_import", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_import_last_fetch_id"))
        batch_op.drop_index(
            "ix_session_import_derive_pending",
            postgresql_where=sa.text("derive_status <> 'COMPLETED'"),
            sqlite_where=sa.text("derive_status <> 'COMPLETED'"),
        )
        batch_op.drop_index(batch_op.f("ix_session_import_company_id_session_import_created_at"))

    op.drop_table("session_import")
    with op.batch_alter_table("scheduler_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduler_run_status_scheduler_run_started_at"))
        batch_op.drop_index(batch_op.f("ix_scheduler_run_job_scheduler_run_started_at"))

    op.drop_table("scheduler_run")
    with op.batch_alter_table("csv_fetch", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_csv_fetch_running_company",
            postgresql_where=sa.text("outcome = 'RUNNING'"),
            sqlite_where=sa.text("outcome = 'RUNNING'"),
        )
        batch_op.drop_index(batch_op.f("ix_csv_fetch_company_id_csv_fetch_started_at"))

    op.drop_table("csv_fetch")
    with op.batch_alter_table("company_ai_model", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_company_ai_model_default",
            postgresql_where=sa.text("is_default"),
            sqlite_where=sa.text("is_default"),
        )

    op.drop_table("company_ai_model")
    with op.batch_alter_table("ai_model_pricing", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_model_pricing_effective_from_ai_model_pricing_effective_until"))
        batch_op.drop_index(batch_op.f("ix_ai_model_pricing_ai_model_id_ai_model_pricing_effective_from"))

    op.drop_table("ai_model_pricing")
    with op.batch_alter_table("ai_batch_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_batch_request_status_ai_batch_request_created_at"))
        batch_op.drop_index(batch_op.f("ix_ai_batch_request_company_id_ai_batch_request_status"))

    op.drop_table("ai_batch_request")
    op.drop_table("scheduler_tick")
    op.drop_table("scheduler_state")
    op.drop_table("question")
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_company_status"))
        batch_op.drop_index(batch_op.f("ix_company_region"))
        batch_op.drop_index(batch_op.f("ix_company_name"))

    op.drop_table("company")
    with op.batch_alter_table("ai_model", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_model_provider_ai_model_is_active"))

    op.drop_table("ai_model")
