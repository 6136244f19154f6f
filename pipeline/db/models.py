"""The data model: the tables of ``docs/architecture.md`` ("Data").

Enumerations are stored as checked ``VARCHAR`` columns rather than native PostgreSQL enum types: adding a
value is then a plain migration, a downgrade leaves no orphan type behind, and SQLite runs the same schema.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pipeline.db.enums import (
    AIBatchRequestStatus,
    AIRequestStatus,
    CompanyStatus,
    CsvFetchOutcome,
    CsvRowProblem,
    ProcessingStage,
    ProcessingStatus,
    SchedulerRunStatus,
    SentimentCategory,
    SessionCategory,
    TickOutcome,
)
from pipeline.db.types import RedactedText, UTCDateTime, utcnow

__all__ = [
    "AIBatchRequest",
    "AIModel",
    "AIModelPricing",
    "AIProcessingRequest",
    "Base",
    "ChatSession",
    "Company",
    "CompanyAIBudget",
    "CompanyAIModel",
    "CompanyAISpend",
    "CsvFetch",
    "CsvRowError",
    "Message",
    "Question",
    "SchedulerRun",
    "SchedulerState",
    "SchedulerTick",
    "SessionImport",
    "SessionProcessingStatus",
    "SessionQuestion",
]

#: Constraint names are deterministic so that migrations can name what they drop.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONColumn = JSON().with_variant(JSONB(), "postgresql")
IPAddress = String(45).with_variant(INET(), "postgresql")


def enum_column(enum: type[StrEnum], name: str) -> SAEnum:
    return SAEnum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(member.value) for member in enum),
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


#: EUR amounts of budgets, reservations and spend: exact decimals, never floats.
EUR = Numeric(18, 9, asdecimal=True)


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def _created_at() -> Mapped[datetime]:
    return mapped_column(
        UTCDateTime, nullable=False, default=utcnow, server_default=text("CURRENT_TIMESTAMP")
    )


def _updated_at() -> Mapped[datetime]:
    return mapped_column(
        UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow, server_default=text("CURRENT_TIMESTAMP")
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Company(Base):
    """A tenant: one company whose chat sessions we import."""

    __tablename__ = "company"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[CompanyStatus] = mapped_column(
        enum_column(CompanyStatus, "company_status"), default=CompanyStatus.ACTIVE, index=True
    )
    csv_url: Mapped[str] = mapped_column(Text)
    csv_username: Mapped[str | None] = mapped_column(String(255))
    #: Fernet token of the Basic-auth password (see ``pipeline.db.secrets``), never the plain text.
    csv_password_encrypted: Mapped[str | None] = mapped_column(Text)
    #: Origins (``https://host[:port]``) besides the CSV URL's to which the credentials are sent, for
    #: transcripts served elsewhere (``pipeline.sources.credentials``).
    transcript_origins: Mapped[list[str]] = mapped_column(
        JSONColumn, default=list, server_default=text("'[]'")
    )
    #: Whether the credentials may travel over plain http.
    allow_http: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    #: Whether its URLs may reach private networks; ``None`` follows CSV_ALLOW_PRIVATE_NETWORKS.
    allow_private_networks: Mapped[bool | None] = mapped_column(Boolean)
    dashboard_opts: Mapped[dict[str, Any] | None] = mapped_column(JSONColumn)
    max_users: Mapped[int] = mapped_column(Integer, default=10)
    region: Mapped[str | None] = mapped_column(String(32), index=True)
    #: IANA zone in which the company's CSV and transcript timestamps are written.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class SessionImport(Base):
    """One raw CSV row, stored as received (``docs/csv-import.md``)."""

    __tablename__ = "session_import"
    __table_args__ = (
        UniqueConstraint("company_id", "external_session_id"),
        Index(None, "company_id", "created_at"),
        # Only rows still to be derived: small once import processing has caught up.
        Index(
            "ix_session_import_derive_pending",
            "derive_status",
            "derive_requested_at",
            postgresql_where=text("derive_status <> 'COMPLETED'"),
            sqlite_where=text("derive_status <> 'COMPLETED'"),
        ),
        # Failed derivations whose retry is scheduled (the sweep's due query), and all failed ones by recency
        # (``sessions failed``): both as small as the failures, whatever the history.
        Index(
            "ix_session_import_derive_retry",
            "derive_next_attempt_at",
            postgresql_where=text("derive_status = 'FAILED' AND derive_next_attempt_at IS NOT NULL"),
            sqlite_where=text("derive_status = 'FAILED' AND derive_next_attempt_at IS NOT NULL"),
        ),
        Index(
            "ix_session_import_derive_failed",
            "updated_at",
            "id",
            postgresql_where=text("derive_status = 'FAILED'"),
            sqlite_where=text("derive_status = 'FAILED'"),
        ),
        CheckConstraint("derive_attempts >= 0", name="derive_attempts_nonneg"),
        CheckConstraint("messages_sent IS NULL OR messages_sent >= 0", name="messages_sent_nonneg"),
        CheckConstraint(
            "avg_response_time_seconds IS NULL OR avg_response_time_seconds >= 0", name="avg_response_nonneg"
        ),
        CheckConstraint("tokens IS NULL OR tokens >= 0", name="tokens_nonneg"),
        CheckConstraint("tokens_eur IS NULL OR tokens_eur >= 0", name="tokens_eur_nonneg"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    external_session_id: Mapped[str] = mapped_column(Text)
    start_time_raw: Mapped[str] = mapped_column(String(255))
    end_time_raw: Mapped[str] = mapped_column(String(255))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    # Wide enough for the raw value ("Netherlands", "nederlands"), which is kept here and normalised onto the
    # Session, rather than failing the row.
    country_code: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(64))
    messages_sent: Mapped[int | None] = mapped_column(Integer)
    sentiment_raw: Mapped[str | None] = mapped_column(String(50))
    escalated_raw: Mapped[str | None] = mapped_column(String(50))
    forwarded_hr_raw: Mapped[str | None] = mapped_column(String(50))
    full_transcript_url: Mapped[str | None] = mapped_column(Text)
    avg_response_time_seconds: Mapped[float | None] = mapped_column(Float)
    tokens: Mapped[int | None] = mapped_column(Integer)
    tokens_eur: Mapped[float | None] = mapped_column(Float)
    category: Mapped[str | None] = mapped_column(String(255))
    initial_message: Mapped[str | None] = mapped_column(Text)
    raw_transcript_content: Mapped[str | None] = mapped_column(Text)
    #: sha256 of the 16 CSV fields: a different hash on re-import means the company changed the row.
    row_hash: Mapped[str] = mapped_column(String(64))
    # Deriving the Session from this row (import processing): its state, lease and retry schedule. The CSV
    # stage sets PENDING for a new row and again when the company changes the row.
    derive_status: Mapped[ProcessingStatus] = mapped_column(
        enum_column(ProcessingStatus, "processing_status"), default=ProcessingStatus.PENDING
    )
    derive_requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    derive_attempts: Mapped[int] = mapped_column(Integer, default=0)
    derive_lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: A FAILED derivation is retried by the sweep after this time; NULL means it is not retried by itself.
    derive_next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    derive_error: Mapped[str | None] = mapped_column(RedactedText)
    #: The CSV fetch that last inserted or changed this row: what that fetch hands to the next stage.
    last_fetch_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class ChatSession(Base):
    """The normalised conversation, one per SessionImport."""

    __tablename__ = "session"
    __table_args__ = (
        CheckConstraint("end_time >= start_time", name="end_after_start"),
        CheckConstraint("avg_response_time IS NULL OR avg_response_time >= 0", name="avg_response_nonneg"),
        CheckConstraint("messages_sent IS NULL OR messages_sent >= 0", name="messages_sent_nonneg"),
        *(
            Index(None, "company_id", column)
            for column in (
                "start_time",
                "sentiment",
                "category",
                "escalated",
                "forwarded_hr",
                "language",
                "messages_sent",
                "avg_response_time",
            )
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    import_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("session_import.id", ondelete="SET NULL"), unique=True
    )
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    ip_address: Mapped[str | None] = mapped_column(IPAddress)
    country: Mapped[str | None] = mapped_column(String(3))
    full_transcript_url: Mapped[str | None] = mapped_column(Text)
    avg_response_time: Mapped[float | None] = mapped_column(Float)
    initial_msg: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(10))
    messages_sent: Mapped[int | None] = mapped_column(Integer)
    sentiment: Mapped[SentimentCategory | None] = mapped_column(
        enum_column(SentimentCategory, "sentiment_category")
    )
    escalated: Mapped[bool | None] = mapped_column(Boolean)
    forwarded_hr: Mapped[bool | None] = mapped_column(Boolean)
    category: Mapped[SessionCategory | None] = mapped_column(enum_column(SessionCategory, "session_category"))
    summary: Mapped[str | None] = mapped_column(Text)
    #: What the last analysis prompt left out to fit OPENAI_MAX_PROMPT_TOKENS; NULL when it sent everything.
    prompt_truncation: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Message(Base):
    """One turn of a parsed transcript."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("session_id", "order"),
        CheckConstraint('"order" >= 0', name="order_nonneg"),
        Index(None, "session_id", "timestamp"),
        Index(None, "session_id", "role"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    role: Mapped[str] = mapped_column(String(50))
    content: Mapped[str] = mapped_column(Text)
    order: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created_at()


class Question(Base):
    """A distinct user question, shared across sessions (and across tenants)."""

    __tablename__ = "question"

    id: Mapped[uuid.UUID] = _uuid_pk()
    content: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = _created_at()


class SessionQuestion(Base):
    __tablename__ = "session_question"
    __table_args__ = (
        UniqueConstraint("session_id", "question_id"),
        UniqueConstraint("session_id", "order"),
        Index(None, "question_id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    question_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("question.id", ondelete="RESTRICT"))
    order: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created_at()


class SessionProcessingStatus(Base):
    """One row per (session, stage): the stage's state, plus the lease that claims it."""

    __tablename__ = "session_processing_status"
    __table_args__ = (
        UniqueConstraint("session_id", "stage"),
        CheckConstraint("retry_count >= 0", name="retry_count_nonneg"),
        CheckConstraint("attempts >= 0", name="attempts_nonneg"),
        CheckConstraint(
            "completed_at IS NULL OR started_at IS NULL OR completed_at >= started_at",
            name="completed_after_start",
        ),
        Index(None, "stage", "status", "lease_expires_at"),
        Index(None, "status", "started_at"),
        Index(
            "ix_session_processing_status_failed",
            "session_id",
            postgresql_where=text("status = 'FAILED'"),
            sqlite_where=text("status = 'FAILED'"),
        ),
        # Failed stage rows whose retry is scheduled (``ClaimPolicy``'s due retries), and all failures by
        # recency (``sessions failed``).
        Index(
            "ix_session_processing_status_retry",
            "next_attempt_at",
            postgresql_where=text("status = 'FAILED' AND next_attempt_at IS NOT NULL"),
            sqlite_where=text("status = 'FAILED' AND next_attempt_at IS NOT NULL"),
        ),
        Index(
            "ix_session_processing_status_failed_at",
            "completed_at",
            "id",
            postgresql_where=text("status = 'FAILED'"),
            sqlite_where=text("status = 'FAILED'"),
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    stage: Mapped[ProcessingStage] = mapped_column(enum_column(ProcessingStage, "processing_stage"))
    status: Mapped[ProcessingStatus] = mapped_column(
        enum_column(ProcessingStatus, "processing_status"), default=ProcessingStatus.PENDING
    )
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_message: Mapped[str | None] = mapped_column(RedactedText)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    stage_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONColumn)
    #: Lease of the worker that claimed the row; past it, any worker may claim the row again.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    leased_by: Mapped[str | None] = mapped_column(String(255))
    #: How many times the row was claimed; caps retries of work that crashes its worker.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: A FAILED row is retried by the sweep only after this time (backoff).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


#: The batches not yet PROCESSED or FAILED: the predicate of ``ix_ai_batch_request_open``.
OPEN_BATCH_PREDICATE = (
    "status IN ('PENDING', 'UPLOADING', 'VALIDATING', 'IN_PROGRESS', 'FINALIZING', 'COMPLETED', 'CANCELLED')"
)


class AIBatchRequest(Base):
    """One OpenAI batch job, written ahead of its creation at OpenAI (``docs/batches.md``)."""

    __tablename__ = "ai_batch_request"
    __table_args__ = (
        Index(None, "company_id", "status"),
        Index(None, "status", "created_at"),
        # The batches still open: what every check lists and counts, a handful whatever the history.
        Index(
            "ix_ai_batch_request_open",
            "status",
            "created_at",
            postgresql_where=text(OPEN_BATCH_PREDICATE),
            sqlite_where=text(OPEN_BATCH_PREDICATE),
        ),
        # ``batches list``, newest first, one page after the other.
        Index("ix_ai_batch_request_created_at", "created_at", "id"),
        # Closed batches whose files at OpenAI may still exist: what the retention deletes them from.
        Index(
            "ix_ai_batch_request_closed",
            "completed_at",
            postgresql_where=text("status IN ('PROCESSED', 'FAILED') AND input_file_id IS NOT NULL"),
            sqlite_where=text("status IN ('PROCESSED', 'FAILED') AND input_file_id IS NOT NULL"),
        ),
        CheckConstraint("request_count >= 0", name="request_count_nonneg"),
        CheckConstraint("enqueued_tokens >= 0", name="enqueued_tokens_nonneg"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    #: The company of a batch planned per company (before batches were filled across companies); NULL for a
    #: batch of one model's requests of every company, whose costs belong to each request's company.
    company_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("company.id", ondelete="RESTRICT"))
    model: Mapped[str] = mapped_column(String(100))
    #: Estimated prompt tokens of its requests: what it counts against ``OPENAI_BATCH_ENQUEUED_TOKEN_LIMIT``
    #: while it is open.
    enqueued_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    #: Sent as batch metadata so that a retry after a crash adopts the batch instead of paying twice.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    openai_batch_id: Mapped[str | None] = mapped_column(Text, unique=True)
    input_file_id: Mapped[str | None] = mapped_column(Text)
    output_file_id: Mapped[str | None] = mapped_column(Text)
    error_file_id: Mapped[str | None] = mapped_column(Text)
    status: Mapped[AIBatchRequestStatus] = mapped_column(
        enum_column(AIBatchRequestStatus, "ai_batch_request_status"), default=AIBatchRequestStatus.PENDING
    )
    request_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Filled when the results are ingested: lines answered and failed, their tokens and cost.
    completed_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_cost_eur: Mapped[float] = mapped_column(Float, default=0.0)
    error_message: Mapped[str | None] = mapped_column(RedactedText)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AIProcessingRequest(Base):
    """One AI call or batch line with its cost; its id is the batch ``custom_id``."""

    __tablename__ = "ai_processing_request"
    __table_args__ = (
        Index(None, "session_id", "requested_at"),
        Index(None, "requested_at"),
        Index(None, "model"),
        Index(None, "success", "requested_at"),
        Index(None, "processing_status", "requested_at"),
        Index(None, "batch_id"),
        # Never two open requests for one session: the database refuses the second.
        Index(
            "uq_ai_processing_request_open_session",
            "session_id",
            unique=True,
            postgresql_where=text("processing_status IN ('PENDING_BATCHING', 'BATCHING_IN_PROGRESS')"),
            sqlite_where=text("processing_status IN ('PENDING_BATCHING', 'BATCHING_IN_PROGRESS')"),
        ),
        # The backlog batch planning reads, oldest first; and the dead (unbilled) requests retention prunes.
        Index(
            "ix_ai_processing_request_batch_backlog",
            "requested_at",
            "id",
            postgresql_where=text("processing_status = 'PENDING_BATCHING' AND batch_id IS NULL"),
            sqlite_where=text("processing_status = 'PENDING_BATCHING' AND batch_id IS NULL"),
        ),
        Index(
            "ix_ai_processing_request_dead",
            "completed_at",
            postgresql_where=text("processing_status = 'PROCESSING_FAILED' AND total_cost_eur = 0"),
            sqlite_where=text("processing_status = 'PROCESSING_FAILED' AND total_cost_eur = 0"),
        ),
        *(
            CheckConstraint(f"{column} >= 0", name=f"{column}_nonneg")
            for column in (
                "prompt_tokens",
                "completion_tokens",
                "total_tokens",
                "prompt_token_cost",
                "completion_token_cost",
                "total_cost_eur",
                "attempts",
                "estimated_prompt_tokens",
                "reserved_eur",
            )
        ),
        CheckConstraint(
            "completed_at IS NULL OR completed_at >= requested_at", name="completed_after_requested"
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"))
    openai_request_id: Mapped[str | None] = mapped_column(String(255))
    model: Mapped[str] = mapped_column(String(100))
    service_tier: Mapped[str | None] = mapped_column(String(50))
    system_fingerprint: Mapped[str | None] = mapped_column(String(255))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int | None] = mapped_column(Integer)
    audio_tokens_prompt: Mapped[int | None] = mapped_column(Integer)
    reasoning_tokens: Mapped[int | None] = mapped_column(Integer)
    audio_tokens_completion: Mapped[int | None] = mapped_column(Integer)
    accepted_prediction_tokens: Mapped[int | None] = mapped_column(Integer)
    rejected_prediction_tokens: Mapped[int | None] = mapped_column(Integer)
    #: Unit prices in USD per token (despite the names), and the total in EUR.
    prompt_token_cost: Mapped[float] = mapped_column(Float, default=0.0)
    completion_token_cost: Mapped[float] = mapped_column(Float, default=0.0)
    total_cost_eur: Mapped[float] = mapped_column(Float, default=0.0)
    #: False when the model had no price valid at request time: tokens are kept, no price is invented.
    cost_known: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    processing_type: Mapped[str] = mapped_column(String(100), default="session_analysis")
    success: Mapped[bool] = mapped_column(Boolean, default=False)
    error_message: Mapped[str | None] = mapped_column(RedactedText)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    requested_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=text("CURRENT_TIMESTAMP")
    )
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processing_status: Mapped[AIRequestStatus] = mapped_column(
        enum_column(AIRequestStatus, "ai_request_status"), default=AIRequestStatus.PENDING_BATCHING
    )
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ai_batch_request.id", ondelete="SET NULL"))
    #: What the request analyses (``pipeline.analysis.analysis_key``): an answered request with the same key
    #: is reused instead of asking, and paying, again.
    analysis_key: Mapped[str | None] = mapped_column(String(64))
    #: The validated answer (``analysis_results.Answer`` as a JSON object), kept for reuse.
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSONColumn)
    estimated_prompt_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    #: What this request holds of its company's budget (``reserved_month``) until its cost is known.
    reserved_eur: Mapped[Decimal] = mapped_column(EUR, default=Decimal(0), server_default=text("0"))
    reserved_month: Mapped[date | None] = mapped_column(Date)


class AIModel(Base):
    __tablename__ = "ai_model"
    __table_args__ = (
        Index(None, "provider", "is_active"),
        CheckConstraint("max_tokens IS NULL OR max_tokens > 0", name="max_tokens_positive"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(100), unique=True)
    provider: Mapped[str] = mapped_column(String(50))
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class AIModelPricing(Base):
    """USD per token, valid over [effective_from, effective_until)."""

    __tablename__ = "ai_model_pricing"
    __table_args__ = (
        Index(None, "ai_model_id", "effective_from"),
        Index(None, "effective_from", "effective_until"),
        CheckConstraint(
            "effective_until IS NULL OR effective_until > effective_from", name="effective_range"
        ),
        CheckConstraint("prompt_token_cost >= 0 AND completion_token_cost >= 0", name="costs_nonneg"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    ai_model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ai_model.id", ondelete="CASCADE"))
    prompt_token_cost: Mapped[float] = mapped_column(Float)
    completion_token_cost: Mapped[float] = mapped_column(Float)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    effective_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created_at()


class CompanyAIBudget(Base):
    """A company's monthly AI budget in EUR; NULL is unlimited. No row: ``AI_MONTHLY_BUDGET_DEFAULT_EUR``."""

    __tablename__ = "company_ai_budget"
    __table_args__ = (CheckConstraint("monthly_eur IS NULL OR monthly_eur >= 0", name="monthly_nonneg"),)

    company_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("company.id", ondelete="CASCADE"), primary_key=True
    )
    monthly_eur: Mapped[Decimal | None] = mapped_column(Numeric(12, 2, asdecimal=True))
    updated_at: Mapped[datetime] = _updated_at()


class CompanyAISpend(Base):
    """What a company spent (answers ingested) and holds reserved (requests in flight) in one month, in EUR.

    Every reservation is a conditional change of this one row under its lock, so that concurrent workers
    never together reserve past the budget (``pipeline/stages/budgets.py``).
    """

    __tablename__ = "company_ai_spend"
    __table_args__ = (
        CheckConstraint("reserved_eur >= 0", name="reserved_nonneg"),
        CheckConstraint("spent_eur >= 0", name="spent_nonneg"),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("company.id", ondelete="CASCADE"), primary_key=True
    )
    #: The first day of the month (UTC).
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    reserved_eur: Mapped[Decimal] = mapped_column(EUR, default=Decimal(0))
    spent_eur: Mapped[Decimal] = mapped_column(EUR, default=Decimal(0))
    updated_at: Mapped[datetime] = _updated_at()


class CompanyAIModel(Base):
    __tablename__ = "company_ai_model"
    __table_args__ = (
        UniqueConstraint("company_id", "ai_model_id"),
        # At most one default model per company.
        Index(
            "uq_company_ai_model_default",
            "company_id",
            unique=True,
            postgresql_where=text("is_default"),
            sqlite_where=text("is_default"),
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    ai_model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ai_model.id", ondelete="CASCADE"))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _created_at()


class SchedulerState(Base):
    """Operator control of one scheduler, honoured by every replica at its next tick."""

    __tablename__ = "scheduler_state"

    scheduler_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Stopped: ticks are recorded as skipped until started again (stop/start, beside pause/resume).
    stopped: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    config: Mapped[dict[str, Any] | None] = mapped_column(JSONColumn)
    updated_at: Mapped[datetime] = _updated_at()


class SchedulerTick(Base):
    """One cron tick of one job; the unique key makes it enqueue once whatever the number of replicas."""

    __tablename__ = "scheduler_tick"
    __table_args__ = (UniqueConstraint("job", "tick_at"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    job: Mapped[str] = mapped_column(String(64))
    tick_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[TickOutcome] = mapped_column(enum_column(TickOutcome, "tick_outcome"))
    instance_id: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(RedactedText)
    recorded_at: Mapped[datetime] = _created_at()


class SchedulerRun(Base):
    """One execution of a job (history for health and the admin API)."""

    __tablename__ = "scheduler_run"
    # One run per tick: a redelivered tick message finds its run instead of starting a second one.
    __table_args__ = (
        Index(None, "job", "started_at"),
        Index(None, "status", "started_at"),
        Index(None, "tick_id", unique=True),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    job: Mapped[str] = mapped_column(String(64))
    tick_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("scheduler_tick.id", ondelete="SET NULL"))
    status: Mapped[SchedulerRunStatus] = mapped_column(
        enum_column(SchedulerRunStatus, "scheduler_run_status")
    )
    instance_id: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = _created_at()
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    items_processed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(RedactedText)


class CsvFetch(Base):
    """One fetch of one company's CSV; a RUNNING row is the company's import claim."""

    __tablename__ = "csv_fetch"
    __table_args__ = (
        Index(None, "company_id", "started_at"),
        Index("ix_csv_fetch_started_at", "started_at"),
        # Never two imports of the same company at once: a second RUNNING row is refused.
        Index(
            "uq_csv_fetch_running_company",
            "company_id",
            unique=True,
            postgresql_where=text("outcome = 'RUNNING'"),
            sqlite_where=text("outcome = 'RUNNING'"),
        ),
        *(
            CheckConstraint(f"{column} >= 0", name=f"{column}_nonneg")
            for column in (
                "rows_total",
                "rows_new",
                "rows_changed",
                "rows_duplicate",
                "rows_invalid",
                "field_warnings",
            )
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    outcome: Mapped[CsvFetchOutcome] = mapped_column(
        enum_column(CsvFetchOutcome, "csv_fetch_outcome"), default=CsvFetchOutcome.RUNNING
    )
    started_at: Mapped[datetime] = _created_at()
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    http_status: Mapped[int | None] = mapped_column(Integer)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_new: Mapped[int] = mapped_column(Integer, default=0)
    rows_changed: Mapped[int] = mapped_column(Integer, default=0)
    rows_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    rows_invalid: Mapped[int] = mapped_column(Integer, default=0)
    #: Fields of stored rows that could not be read as written (stored as null, or decoded by fallback).
    field_warnings: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(RedactedText)


class CsvRowError(Base):
    """A problem with one CSV row, with its line and the reason: the row refused (``ERROR``), or one field of
    a stored row stored as null or decoded by fallback (``WARNING``, naming ``column_name``)."""

    __tablename__ = "csv_row_error"
    __table_args__ = (
        Index(None, "company_id", "created_at"),
        Index(None, "fetch_id"),
        Index("ix_csv_row_error_created_at", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    fetch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("csv_fetch.id", ondelete="CASCADE"))
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    line_number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[CsvRowProblem] = mapped_column(
        enum_column(CsvRowProblem, "csv_row_problem"),
        default=CsvRowProblem.ERROR,
        server_default=CsvRowProblem.ERROR.value,
    )
    #: The field name of the column a warning is about; NULL for a refused row.
    column_name: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(RedactedText)
    #: A refused row: the start of its record. A warning: the start of the field's value.
    raw_excerpt: Mapped[str | None] = mapped_column(RedactedText)
    created_at: Mapped[datetime] = _created_at()
