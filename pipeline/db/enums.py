"""The enumerations of the data, values exact and in order (``docs/architecture.md``, "Data")."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AIBatchRequestStatus",
    "AIRequestStatus",
    "CompanyStatus",
    "CsvFetchOutcome",
    "CsvRowProblem",
    "ProcessingStage",
    "ProcessingStatus",
    "SchedulerRunStatus",
    "SentimentCategory",
    "SessionCategory",
    "TickOutcome",
]


class CompanyStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    TRIAL = "TRIAL"
    ARCHIVED = "ARCHIVED"


class SentimentCategory(StrEnum):
    POSITIVE = "POSITIVE"
    NEUTRAL = "NEUTRAL"
    NEGATIVE = "NEGATIVE"


class SessionCategory(StrEnum):
    SCHEDULE_HOURS = "SCHEDULE_HOURS"
    LEAVE_VACATION = "LEAVE_VACATION"
    SICK_LEAVE_RECOVERY = "SICK_LEAVE_RECOVERY"
    SALARY_COMPENSATION = "SALARY_COMPENSATION"
    CONTRACT_HOURS = "CONTRACT_HOURS"
    ONBOARDING = "ONBOARDING"
    OFFBOARDING = "OFFBOARDING"
    WORKWEAR_STAFF_PASS = "WORKWEAR_STAFF_PASS"  # noqa: S105  a question category, not a password
    TEAM_CONTACTS = "TEAM_CONTACTS"
    PERSONAL_QUESTIONS = "PERSONAL_QUESTIONS"
    ACCESS_LOGIN = "ACCESS_LOGIN"
    SOCIAL_QUESTIONS = "SOCIAL_QUESTIONS"
    UNRECOGNIZED_OTHER = "UNRECOGNIZED_OTHER"


class ProcessingStage(StrEnum):
    """Pipeline stages of one session, in pipeline order."""

    CSV_IMPORT = "CSV_IMPORT"
    TRANSCRIPT_FETCH = "TRANSCRIPT_FETCH"
    SESSION_CREATION = "SESSION_CREATION"
    AI_ANALYSIS = "AI_ANALYSIS"
    QUESTION_EXTRACTION = "QUESTION_EXTRACTION"


class ProcessingStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class AIBatchRequestStatus(StrEnum):
    PENDING = "PENDING"
    UPLOADING = "UPLOADING"
    VALIDATING = "VALIDATING"
    IN_PROGRESS = "IN_PROGRESS"
    FINALIZING = "FINALIZING"
    COMPLETED = "COMPLETED"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class AIRequestStatus(StrEnum):
    PENDING_BATCHING = "PENDING_BATCHING"
    BATCHING_IN_PROGRESS = "BATCHING_IN_PROGRESS"
    PROCESSING_COMPLETE = "PROCESSING_COMPLETE"
    PROCESSING_FAILED = "PROCESSING_FAILED"


class TickOutcome(StrEnum):
    """What became of one scheduler tick."""

    ENQUEUED = "ENQUEUED"
    SKIPPED_PAUSED = "SKIPPED_PAUSED"
    SKIPPED_OVERLAP = "SKIPPED_OVERLAP"
    SKIPPED_STALE = "SKIPPED_STALE"
    FAILED = "FAILED"


class SchedulerRunStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class CsvFetchOutcome(StrEnum):
    """How one fetch of a company's CSV ended."""

    RUNNING = "RUNNING"
    IMPORTED = "IMPORTED"
    UNCHANGED = "UNCHANGED"
    FAILED = "FAILED"


class CsvRowProblem(StrEnum):
    """What a ``csv_row_error`` row records: a row refused, or one field of a stored row stored as null."""

    ERROR = "ERROR"
    WARNING = "WARNING"
