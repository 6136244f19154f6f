"""The import-processing stage: from a stored CSV row to a Session with its messages and stage rows.

For a chunk of import ids: claim them (lease on ``session_import``), parse their times in the company's
zone, create or update their Sessions and stage rows, fetch the transcripts in parallel, parse them into
messages, and hand the sessions that have messages to AI analysis. Callable without a broker; the actors in
``pipeline.actors.import_processing`` wire it to the ``import-processing`` queue.

Failures and what follows from them:

* a time that does not parse, or an end before the start: the import FAILED with the raw value in the
  reason; not retried by itself (a corrected CSV row or ``livedash sessions retry`` brings it back);
* a transcript that is missing (no URL), empty, not found, refused or too large: TRANSCRIPT_FETCH FAILED or
  SKIPPED with the reason, and the later stages SKIPPED, so the session never waits for analysis forever;
* a transcript fetch that may succeed later (timeout, 5xx, connection): TRANSCRIPT_FETCH FAILED, the import
  FAILED with a next attempt after a backoff kept in the database; after ``IMPORT_PROCESSING_MAX_ATTEMPTS``
  it is final and the later stages are SKIPPED.

Each import is completed with a compare-and-set on ``derive_requested_at``: if the company changed the row
while it was being processed, the row stays PENDING and is derived again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from pipeline import metrics
from pipeline.db.claims import IMPORT_DERIVATION, claim
from pipeline.db.enums import CompanyStatus, ProcessingStage, ProcessingStatus
from pipeline.db.models import ChatSession, Company, Message, SessionImport
from pipeline.db.secrets import PasswordBox
from pipeline.db.types import utcnow
from pipeline.settings import Settings
from pipeline.sources.http_fetch import Fetcher, FetchLimits
from pipeline.sources.normalize import normalize_country, normalize_ip, normalize_language
from pipeline.sources.timestamps import TimestampError, parse_local_timestamp
from pipeline.sources.transcript_format import ParsedTranscript, count_user_messages, parse_transcript
from pipeline.sources.urls import redact_url
from pipeline.stages.stage_status import StageChange, apply_stage_changes, ensure_stage_rows
from pipeline.stages.transcripts import (
    TranscriptOutcome,
    TranscriptRequest,
    fetch_transcripts,
    transcript_limits,
)

__all__ = ["ImportProcessingResult", "process_imports", "transcript_fetcher_limits"]

logger = logging.getLogger(__name__)

STAGE = "import-processing"
_sessions = cast(Table, ChatSession.__table__)
_messages = cast(Table, Message.__table__)
_LEASE_GRACE = timedelta(minutes=2)
_MAX_WARNINGS = 20

_CSV, _FETCH, _CREATE = (
    ProcessingStage.CSV_IMPORT,
    ProcessingStage.TRANSCRIPT_FETCH,
    ProcessingStage.SESSION_CREATION,
)
_AI, _QUESTIONS = ProcessingStage.AI_ANALYSIS, ProcessingStage.QUESTION_EXTRACTION


@dataclass(frozen=True)
class ImportProcessingResult:
    """What one chunk came to; ``analysable`` are the sessions handed to AI analysis."""

    claimed: int
    completed: int
    failed: int
    retrying: int
    analysable: list[uuid.UUID]


@dataclass
class _Work:
    """One claimed import on its way to a session."""

    row: SessionImport
    zone: ZoneInfo
    username: str | None
    encrypted_password: str | None
    start: datetime | None = None
    end: datetime | None = None
    session_id: uuid.UUID | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Outcome:
    """How one import ends in this run, recorded in one transaction with all the others."""

    status: ProcessingStatus = ProcessingStatus.COMPLETED
    error: str | None = None
    retry_at: datetime | None = None
    transcript: str | None = None
    changes: list[StageChange] = field(default_factory=list)
    messages: ParsedTranscript | None = None


def transcript_fetcher_limits(settings: Settings) -> FetchLimits:
    return transcript_limits(
        timeout_ms=settings.transcript_fetch_timeout,
        max_bytes=settings.transcript_max_bytes,
        allow_private=settings.csv_allow_private_networks,
    )


@lru_cache(maxsize=4)
def _password_box(secret: str) -> PasswordBox:
    return PasswordBox(secret)


def _backoff(settings: Settings, attempts: int) -> timedelta:
    milliseconds = settings.import_processing_backoff_ms * 2 ** max(attempts - 1, 0)
    return timedelta(milliseconds=min(milliseconds, settings.import_processing_max_backoff_ms))


def _claim(
    factory: sessionmaker[Session], settings: Settings, import_ids: Sequence[uuid.UUID], now: datetime
) -> list[_Work]:
    active = select(Company.id).where(Company.status == CompanyStatus.ACTIVE)
    with factory.begin() as db:
        claimed = claim(
            db,
            IMPORT_DERIVATION,
            limit=len(import_ids),
            owner=settings.scheduler_instance_id,
            now=now,
            lease=timedelta(milliseconds=settings.import_processing_timeout) + _LEASE_GRACE,
            where=[SessionImport.id.in_(import_ids), SessionImport.company_id.in_(active)],
        )
        if not claimed:
            return []
        rows = db.execute(
            select(SessionImport, Company.timezone, Company.csv_username, Company.csv_password_encrypted)
            .join(Company, Company.id == SessionImport.company_id)
            .where(SessionImport.id.in_(claimed))
        ).all()
    return [_Work(row, ZoneInfo(zone), username, password) for row, zone, username, password in rows]


def _parse_times(work: _Work) -> str | None:
    """Set the work's UTC start and end; return why not, with the raw values, if they cannot be."""
    try:
        work.start = parse_local_timestamp(work.row.start_time_raw, work.zone)
        work.end = parse_local_timestamp(work.row.end_time_raw, work.zone)
    except TimestampError as exc:
        return f"unparseable time: {exc}"
    if work.end < work.start:
        return f"end time {work.row.end_time_raw!r} is before start time {work.row.start_time_raw!r}"
    return None


def _session_values(work: _Work, now: datetime) -> dict[str, Any]:
    row = work.row
    ip = normalize_ip(row.ip_address)
    if row.ip_address and ip is None:
        work.warnings.append(f"invalid IP address {row.ip_address!r} dropped")
    return {
        "company_id": row.company_id,
        "import_id": row.id,
        "start_time": work.start,
        "end_time": work.end,
        "ip_address": ip,
        "country": normalize_country(row.country_code),
        "language": normalize_language(row.language),
        "full_transcript_url": row.full_transcript_url,
        "avg_response_time": row.avg_response_time_seconds,
        "initial_msg": row.initial_message,
        "updated_at": now,
    }


def _upsert_sessions(db: Session, works: list[_Work], now: datetime) -> None:
    """Create or update the Session of each import (one per import, keyed by ``import_id``)."""
    values = [{"id": uuid.uuid4(), "created_at": now, **_session_values(work, now)} for work in works]
    dialect_insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(_sessions)
    updated = {
        key: statement.excluded[key] for key in values[0] if key not in {"id", "created_at", "import_id"}
    }
    returned = db.execute(
        statement.on_conflict_do_update(index_elements=["import_id"], set_=updated).returning(
            _sessions.c.import_id, _sessions.c.id
        ),
        values,
    ).all()
    sessions: dict[uuid.UUID, uuid.UUID] = {import_id: session_id for import_id, session_id in returned}
    for work in works:
        work.session_id = sessions[work.row.id]


def _skip_later_stages(session_id: uuid.UUID, reason: str) -> list[StageChange]:
    return [
        StageChange(session_id, _CREATE, ProcessingStatus.SKIPPED, reason),
        StageChange(session_id, _AI, ProcessingStatus.SKIPPED, reason),
        StageChange(session_id, _QUESTIONS, ProcessingStatus.SKIPPED, reason),
    ]


def _decide(work: _Work, fetched: TranscriptOutcome | None, settings: Settings, now: datetime) -> _Outcome:
    """What the transcript (fetched now, stored before, or absent) means for the session's stages."""
    assert work.session_id is not None
    session_id, row = work.session_id, work.row
    outcome = _Outcome()
    if row.raw_transcript_content is not None:
        outcome.transcript = row.raw_transcript_content
        outcome.changes.append(
            StageChange(
                session_id,
                _FETCH,
                ProcessingStatus.COMPLETED,
                metadata={"contentLength": len(row.raw_transcript_content), "source": "already_fetched"},
            )
        )
    elif not row.full_transcript_url:
        reason = "No transcript URL provided"
        outcome.changes += [
            StageChange(session_id, _FETCH, ProcessingStatus.SKIPPED, reason),
            *_skip_later_stages(session_id, f"no transcript: {reason}"),
        ]
        return outcome
    elif fetched is not None and fetched.text is None:
        final = not fetched.transient or row.derive_attempts >= settings.import_processing_max_attempts
        reason = fetched.error or "transcript fetch failed"
        outcome.changes.append(StageChange(session_id, _FETCH, ProcessingStatus.FAILED, reason))
        outcome.status, outcome.error = ProcessingStatus.FAILED, f"transcript fetch failed: {reason}"
        if final:
            if fetched.transient:
                reason = f"{reason} (gave up after {row.derive_attempts} attempts)"
            outcome.changes += _skip_later_stages(session_id, f"transcript unavailable: {reason}")
        else:
            outcome.retry_at = now + _backoff(settings, row.derive_attempts)
        return outcome
    elif fetched is not None:
        outcome.transcript = fetched.text
        outcome.changes.append(
            StageChange(
                session_id,
                _FETCH,
                ProcessingStatus.COMPLETED,
                metadata={
                    "contentLength": len(fetched.text or ""),
                    "bytes": fetched.bytes_read,
                    "url": redact_url(row.full_transcript_url),
                    "warnings": list(fetched.warnings)[:_MAX_WARNINGS],
                },
            )
        )
        work.warnings += fetched.warnings

    assert outcome.transcript is not None
    parsed = parse_transcript(outcome.transcript, work.zone)
    outcome.messages = parsed
    warnings = [*work.warnings, *parsed.warnings][:_MAX_WARNINGS]
    outcome.changes.append(
        StageChange(
            session_id,
            _CREATE,
            ProcessingStatus.COMPLETED,
            metadata={
                "hasTranscript": True,
                "transcriptLength": len(outcome.transcript),
                "messages": len(parsed.messages),
                "warnings": warnings,
            },
        )
    )
    if parsed.messages:
        # New or changed messages are analysed (again); a re-derived session is re-analysed.
        outcome.changes += [
            StageChange(session_id, _AI, ProcessingStatus.PENDING),
            StageChange(session_id, _QUESTIONS, ProcessingStatus.PENDING),
        ]
    else:
        reason = "no messages in the transcript"
        outcome.changes += [
            StageChange(session_id, _AI, ProcessingStatus.SKIPPED, reason),
            StageChange(session_id, _QUESTIONS, ProcessingStatus.SKIPPED, reason),
        ]
    return outcome


def _finish_import(db: Session, row: SessionImport, outcome: _Outcome, now: datetime) -> bool:
    """Record how the import ended, unless the company changed it meanwhile; True if recorded."""
    values: dict[str, Any] = {
        "derive_status": outcome.status,
        "derive_error": outcome.error,
        "derive_next_attempt_at": outcome.retry_at,
        "derive_lease_expires_at": None,
        "updated_at": now,
    }
    if outcome.transcript is not None:
        values["raw_transcript_content"] = outcome.transcript
    result = db.connection().execute(
        update(SessionImport)
        .where(SessionImport.id == row.id, SessionImport.derive_requested_at == row.derive_requested_at)
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def _replace_messages(db: Session, outcomes: dict[uuid.UUID, _Outcome], now: datetime) -> None:
    """Swap in the parsed messages of every session that has them, in the caller's transaction."""
    parsed = {session_id: outcome.messages for session_id, outcome in outcomes.items() if outcome.messages}
    if not parsed:
        return
    db.execute(
        delete(Message).where(Message.session_id.in_(parsed)).execution_options(synchronize_session=False)
    )
    rows = [
        {
            "id": uuid.uuid4(),
            "session_id": session_id,
            "timestamp": message.timestamp,
            "role": message.role,
            "content": message.content,
            "order": message.order,
            "created_at": now,
        }
        for session_id, transcript in parsed.items()
        for message in transcript.messages
    ]
    if rows:
        db.execute(insert(_messages), rows)
    db.execute(
        _SET_MESSAGES_SENT,
        [
            {"b_id": session_id, "b_count": count_user_messages(transcript.messages)}
            for session_id, transcript in parsed.items()
        ],
    )


_SET_MESSAGES_SENT = (
    update(_sessions).where(_sessions.c.id == bindparam("b_id")).values(messages_sent=bindparam("b_count"))
)


def _fail_imports(db: Session, failures: list[tuple[SessionImport, str]], now: datetime) -> None:
    for row, reason in failures:
        _finish_import(db, row, _Outcome(status=ProcessingStatus.FAILED, error=reason), now)


def process_imports(
    engine: Engine,
    settings: Settings,
    import_ids: Sequence[uuid.UUID],
    *,
    fetcher: Fetcher,
    hand_over: Callable[[list[uuid.UUID]], None],
) -> ImportProcessingResult:
    """Derive the Sessions of ``import_ids`` (those this worker can claim) and hand on the analysable ones."""
    factory = sessionmaker(engine, expire_on_commit=False)
    now = utcnow()
    works = _claim(factory, settings, import_ids, now)
    if not works:
        return ImportProcessingResult(0, 0, 0, 0, [])

    failures: list[tuple[SessionImport, str]] = []
    ready: list[_Work] = []
    for work in works:
        if work.row.derive_attempts > settings.import_processing_max_attempts:
            failures.append(
                (
                    work.row,
                    f"gave up after {settings.import_processing_max_attempts} attempts: "
                    f"{work.row.derive_error or 'the worker kept dying'}",
                )
            )
        elif reason := _parse_times(work):
            failures.append((work.row, reason))
        else:
            ready.append(work)

    with factory.begin() as db:
        _fail_imports(db, failures, now)
        if ready:
            _upsert_sessions(db, ready, now)
            session_ids = [work.session_id for work in ready if work.session_id is not None]
            ensure_stage_rows(db, session_ids, now)
            apply_stage_changes(
                db,
                [
                    StageChange(
                        session_id, _CSV, ProcessingStatus.COMPLETED, metadata={"warnings": work.warnings}
                    )
                    for work, session_id in zip(ready, session_ids, strict=True)
                ],
                now,
            )

    box = (
        _password_box(settings.secret_key.get_secret_value())
        if settings.secret_key.get_secret_value()
        else None
    )
    requests = {
        work.row.id: TranscriptRequest(
            work.row.full_transcript_url,
            work.username,
            box.decrypt(work.encrypted_password) if box and work.encrypted_password else None,
        )
        for work in ready
        if work.row.raw_transcript_content is None and work.row.full_transcript_url
    }
    fetched = fetch_transcripts(fetcher, requests, concurrency=settings.transcript_fetch_concurrency)

    outcomes = {work.row.id: _decide(work, fetched.get(work.row.id), settings, now) for work in ready}
    analysable: list[uuid.UUID] = []
    with factory.begin() as db:
        by_session = {}
        for work in ready:
            outcome = outcomes[work.row.id]
            if _finish_import(db, work.row, outcome, now):
                assert work.session_id is not None
                by_session[work.session_id] = outcome
        _replace_messages(db, by_session, now)
        apply_stage_changes(
            db, [change for outcome in by_session.values() for change in outcome.changes], now
        )
        analysable = [
            session_id
            for session_id, outcome in by_session.items()
            if outcome.messages and outcome.messages.messages
        ]

    retrying = sum(1 for outcome in outcomes.values() if outcome.retry_at is not None)
    failed = len(failures) + sum(
        1
        for outcome in outcomes.values()
        if outcome.status is ProcessingStatus.FAILED and outcome.retry_at is None
    )
    completed = len(works) - failed - retrying
    metrics.STAGE_ITEMS.labels(STAGE, "completed").inc(completed)
    metrics.STAGE_ITEMS.labels(STAGE, "failed").inc(failed)
    metrics.STAGE_ITEMS.labels(STAGE, "retrying").inc(retrying)
    for start in range(0, len(analysable), settings.session_processing_batch_size):
        hand_over(analysable[start : start + settings.session_processing_batch_size])
    return ImportProcessingResult(len(works), completed, failed, retrying, analysable)
