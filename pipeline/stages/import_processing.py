"""The import-processing stage: from a stored CSV row to a Session with its messages and stage rows.

For a chunk of import ids: claim them (lease on ``session_import``), parse their times in the company's
zone, create or update their Sessions and stage rows, fetch the transcripts in parallel, parse them into
messages, and hand the sessions that have messages to AI analysis. Callable without a broker; its entry points
(``pipeline.stages.entry_points``) are what the ``import-processing`` actors run.

Failures and what follows from them:

* a time that does not parse, or an end before the start: the import FAILED with the raw value in the
  reason; not retried by itself (a corrected CSV row or ``livedash sessions retry`` brings it back);
* a transcript that is missing (no URL), empty, not found, refused or too large: TRANSCRIPT_FETCH FAILED or
  SKIPPED with the reason, and the later stages SKIPPED, so the session never waits for analysis forever;
* a transcript fetch that may succeed later (timeout, 5xx, connection): TRANSCRIPT_FETCH FAILED, the import
  FAILED with a next attempt after a backoff kept in the database; after ``IMPORT_PROCESSING_MAX_ATTEMPTS``
  it is final and the later stages are SKIPPED;
* a transcript the chunk has no room left for (``IMPORT_PROCESSING_MAX_CHUNK_BYTES``): TRANSCRIPT_FETCH
  PENDING with the reason, the import due again at once (the next sweep sends it), and the run not counted
  as an attempt.

The chunk is written in one transaction. If the database refuses it for the data of one import (a value a
constraint refuses, say), it is split in halves until that import is alone: the others land, and that one is
FAILED with ``the database refused the session: <reason>``, not retried by itself.

Each import is completed with a compare-and-set on ``derive_requested_at``: if the company changed the row
while it was being processed, the row stays PENDING and is derived again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Integer, Table, Text, bindparam, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline import metrics
from pipeline.db.bulk import bulk_insert, upsert_statement
from pipeline.db.claims import IMPORT_DERIVATION, claim, lease_for
from pipeline.db.enums import CompanyStatus, ProcessingStage, ProcessingStatus
from pipeline.db.models import ChatSession, Company, Message, SessionImport, SessionProcessingStatus
from pipeline.db.refusals import WRITE_ERRORS, refusal_reason
from pipeline.db.types import utcnow
from pipeline.errors import is_transient
from pipeline.queues import IMPORT_PROCESSING
from pipeline.settings import Settings
from pipeline.sources.http_fetch import Fetcher, FetchLimits
from pipeline.sources.normalize import normalize_country, normalize_ip, normalize_language
from pipeline.sources.timestamps import TimestampError, parse_local_timestamp
from pipeline.sources.transcript_format import ParsedTranscript, count_user_messages, parse_transcript
from pipeline.sources.urls import redact_url
from pipeline.stages.chunks import send_in_chunks
from pipeline.stages.company_egress import company_credentials
from pipeline.stages.stage_status import TERMINAL, StageChange, apply_stage_changes, ensure_stage_rows
from pipeline.stages.transcripts import (
    ChunkBytesExhausted,
    TranscriptOutcome,
    TranscriptRequest,
    fetch_transcripts,
    transcript_limits,
)

__all__ = ["ImportProcessingResult", "process_imports", "transcript_fetcher_limits"]

logger = logging.getLogger(__name__)

STAGE = IMPORT_PROCESSING
_sessions = cast(Table, ChatSession.__table__)
_messages = cast(Table, Message.__table__)
_imports = cast(Table, SessionImport.__table__)
_statuses = cast(Table, SessionProcessingStatus.__table__)
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
    company: Company
    start: datetime | None = None
    end: datetime | None = None
    session_id: uuid.UUID | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _StageResult:
    status: ProcessingStatus
    error: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass
class _Outcome:
    """How one import ends in this run, recorded in one transaction with all the others."""

    status: ProcessingStatus = ProcessingStatus.COMPLETED
    error: str | None = None
    retry_at: datetime | None = None
    transcript: str | None = None
    stages: dict[ProcessingStage, _StageResult] = field(default_factory=dict)
    messages: ParsedTranscript | None = None
    #: This run does not count as an attempt: the import was deferred, through no fault of its own.
    refund_attempt: bool = False

    def set(
        self,
        stage: ProcessingStage,
        status: ProcessingStatus,
        error: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.stages[stage] = _StageResult(status, error, metadata)

    def skip_later_stages(self, reason: str) -> None:
        for stage in (_CREATE, _AI, _QUESTIONS):
            self.set(stage, ProcessingStatus.SKIPPED, reason)

    @property
    def analysable(self) -> bool:
        return self.messages is not None and bool(self.messages.messages)


def transcript_fetcher_limits(settings: Settings) -> FetchLimits:
    return transcript_limits(
        timeout_ms=settings.transcript_fetch_timeout,
        max_bytes=settings.transcript_max_bytes,
        allow_private=settings.csv_allow_private_networks,
    )


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
            lease=lease_for(settings.import_processing_timeout, settings.claim_lease_grace),
            where=[SessionImport.id.in_(import_ids), SessionImport.company_id.in_(active)],
        )
        if not claimed:
            return []
        rows = db.execute(
            select(SessionImport, Company)
            .join(Company, Company.id == SessionImport.company_id)
            .where(SessionImport.id.in_(claimed))
        ).all()
    return [_Work(row, ZoneInfo(company.timezone), company) for row, company in rows]


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


def _decide(work: _Work, fetched: TranscriptOutcome | None, settings: Settings, now: datetime) -> _Outcome:
    """What the transcript (fetched now, stored before, or absent) means for the session's stages."""
    row, outcome = work.row, _Outcome()
    if row.raw_transcript_content is not None:
        outcome.transcript = row.raw_transcript_content
        outcome.set(
            _FETCH,
            ProcessingStatus.COMPLETED,
            metadata={"contentLength": len(row.raw_transcript_content), "source": "already_fetched"},
        )
    elif not row.full_transcript_url:
        reason = "No transcript URL provided"
        outcome.set(_FETCH, ProcessingStatus.SKIPPED, reason)
        outcome.skip_later_stages(f"no transcript: {reason}")
        return outcome
    elif fetched is not None and isinstance(fetched.failure, ChunkBytesExhausted):
        # Not this transcript's fault: the chunk is full. It is due again at once; this run was no attempt.
        outcome.set(_FETCH, ProcessingStatus.PENDING, fetched.error)
        outcome.status, outcome.error = ProcessingStatus.FAILED, f"transcript deferred: {fetched.error}"
        outcome.retry_at, outcome.refund_attempt = now, True
        return outcome
    elif fetched is not None and fetched.text is None:
        reason = fetched.error or "transcript fetch failed"
        outcome.set(_FETCH, ProcessingStatus.FAILED, reason)
        outcome.status, outcome.error = ProcessingStatus.FAILED, f"transcript fetch failed: {reason}"
        transient = is_transient(fetched.failure)
        if transient and row.derive_attempts < settings.import_processing_max_attempts:
            outcome.retry_at = now + _backoff(settings, row.derive_attempts)
        else:
            if transient:
                reason = f"{reason} (gave up after {row.derive_attempts} attempts)"
            outcome.skip_later_stages(f"transcript unavailable: {reason}")
        return outcome
    elif fetched is not None:
        outcome.transcript = fetched.text
        outcome.set(
            _FETCH,
            ProcessingStatus.COMPLETED,
            metadata={
                "contentLength": len(fetched.text or ""),
                "bytes": fetched.bytes_read,
                "url": redact_url(row.full_transcript_url),
                "warnings": list(fetched.warnings)[:_MAX_WARNINGS],
            },
        )
        work.warnings += fetched.warnings

    assert outcome.transcript is not None
    parsed = parse_transcript(outcome.transcript, work.zone, max_messages=settings.transcript_max_messages)
    outcome.messages = parsed
    metadata: dict[str, Any] = {
        "hasTranscript": True,
        "transcriptLength": len(outcome.transcript),
        "messages": len(parsed.messages),
        "warnings": [*work.warnings, *parsed.warnings][:_MAX_WARNINGS],
    }
    if parsed.truncated:
        # The whole text stays on the import; only the messages stored (and analysed) stop here.
        metadata["truncated"] = parsed.truncated
    outcome.set(_CREATE, ProcessingStatus.COMPLETED, metadata=metadata)
    if parsed.messages:
        # New or changed messages are analysed (again); a re-derived session is re-analysed.
        outcome.set(_AI, ProcessingStatus.PENDING)
        outcome.set(_QUESTIONS, ProcessingStatus.PENDING)
    else:
        outcome.set(_AI, ProcessingStatus.SKIPPED, "no messages in the transcript")
        outcome.set(_QUESTIONS, ProcessingStatus.SKIPPED, "no messages in the transcript")
    return outcome


def _session_values(work: _Work, outcome: _Outcome | None, now: datetime) -> dict[str, Any]:
    row = work.row
    ip = normalize_ip(row.ip_address)
    if row.ip_address and ip is None:
        work.warnings.append(f"invalid IP address {row.ip_address!r} dropped")
    messages = outcome.messages.messages if outcome and outcome.messages else None
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
        "messages_sent": count_user_messages(messages) if messages is not None else None,
        "updated_at": now,
    }


def _upsert_sessions(
    db: Session, works: list[_Work], outcomes: dict[uuid.UUID, _Outcome], now: datetime
) -> set[uuid.UUID]:
    """Create or update the Session of each import (keyed by ``import_id``); return the newly created ones."""
    existing = set(
        db.scalars(
            select(ChatSession.import_id).where(ChatSession.import_id.in_([work.row.id for work in works]))
        )
    )
    values = [
        {"id": uuid.uuid4(), "created_at": now, **_session_values(work, outcomes.get(work.row.id), now)}
        for work in works
    ]
    statement = upsert_statement(db, _sessions)
    kept = {"id", "created_at", "import_id"}
    updated: dict[str, Any] = {key: statement.excluded[key] for key in values[0] if key not in kept}
    # A session whose transcript is unavailable this time keeps the message count it had.
    updated["messages_sent"] = func.coalesce(statement.excluded["messages_sent"], _sessions.c.messages_sent)
    returned = db.execute(
        statement.on_conflict_do_update(index_elements=["import_id"], set_=updated).returning(
            _sessions.c.import_id, _sessions.c.id
        ),
        values,
    ).all()
    sessions: dict[uuid.UUID, uuid.UUID] = {import_id: session_id for import_id, session_id in returned}
    for work in works:
        work.session_id = sessions[work.row.id]
    return {sessions[import_id] for import_id in sessions if import_id not in existing}


def _stage_rows(session_id: uuid.UUID, work: _Work, outcome: _Outcome, now: datetime) -> list[dict[str, Any]]:
    """The five stage rows of a new session, born in their final state."""
    results = {
        _CSV: _StageResult(ProcessingStatus.COMPLETED, metadata={"warnings": work.warnings}),
        **outcome.stages,
    }
    rows = []
    for stage in ProcessingStage:
        result = results.get(stage, _StageResult(ProcessingStatus.PENDING))
        done = result.status in TERMINAL
        rows.append(
            {
                "id": uuid.uuid4(),
                "session_id": session_id,
                "stage": stage,
                "status": result.status,
                "started_at": now if done else None,
                "completed_at": now if done else None,
                "error_message": result.error,
                "metadata": result.metadata,
                "retry_count": int(result.status is ProcessingStatus.FAILED),
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


def _record_stages(
    db: Session,
    works: list[_Work],
    outcomes: dict[uuid.UUID, _Outcome],
    new_sessions: set[uuid.UUID],
    now: datetime,
) -> None:
    new_rows: list[dict[str, Any]] = []
    changes: list[StageChange] = []
    existing: list[uuid.UUID] = []
    for work in works:
        assert work.session_id is not None
        outcome = outcomes[work.row.id]
        if work.session_id in new_sessions:
            new_rows += _stage_rows(work.session_id, work, outcome, now)
            continue
        existing.append(work.session_id)
        changes.append(
            StageChange(
                work.session_id, _CSV, ProcessingStatus.COMPLETED, metadata={"warnings": work.warnings}
            )
        )
        changes += [
            StageChange(work.session_id, stage, result.status, result.error, result.metadata)
            for stage, result in outcome.stages.items()
        ]
    if new_rows:
        bulk_insert(db, _statuses, new_rows)
    if existing:
        ensure_stage_rows(db, existing, now)
        apply_stage_changes(db, changes, now)


def _replace_messages(
    db: Session,
    works: list[_Work],
    outcomes: dict[uuid.UUID, _Outcome],
    new_sessions: set[uuid.UUID],
    now: datetime,
) -> None:
    """Swap in the parsed messages of every session that has them, in the caller's transaction."""
    parsed = {
        work.session_id: outcomes[work.row.id].messages
        for work in works
        if work.session_id is not None and outcomes[work.row.id].messages is not None
    }
    replaced = [session_id for session_id in parsed if session_id not in new_sessions]
    if replaced:
        db.execute(
            delete(Message)
            .where(Message.session_id.in_(replaced))
            .execution_options(synchronize_session=False)
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
        if transcript is not None
        for message in transcript.messages
    ]
    if rows:
        bulk_insert(db, _messages, rows)


def _finish_imports(
    db: Session, finished: list[tuple[SessionImport, _Outcome]], now: datetime
) -> set[uuid.UUID]:
    """Record how each import ended, unless the company changed it meanwhile; return the recorded ids.

    The rows are locked first, so that a concurrent CSV import that changes one waits for this transaction and
    then sends it back to PENDING, rather than this transaction completing a row it did not derive.
    """
    if not finished:
        return set()
    locked = db.execute(
        select(SessionImport.id, SessionImport.derive_requested_at)
        .where(SessionImport.id.in_([row.id for row, _ in finished]))
        .with_for_update()
    )
    current = {import_id: requested_at for import_id, requested_at in locked}
    unchanged = [
        (row, outcome) for row, outcome in finished if current.get(row.id) == row.derive_requested_at
    ]
    if unchanged:
        db.execute(
            _FINISH_IMPORT,
            [
                {
                    "b_id": row.id,
                    "b_status": outcome.status,
                    "b_error": outcome.error,
                    "b_next": outcome.retry_at,
                    "b_transcript": outcome.transcript,
                    "b_refund": int(outcome.refund_attempt),
                    "b_now": now,
                }
                for row, outcome in unchanged
            ],
        )
    return {row.id for row, _ in unchanged}


_FINISH_IMPORT = (
    update(_imports)
    .where(_imports.c.id == bindparam("b_id"))
    .values(
        derive_status=bindparam("b_status"),
        derive_error=bindparam("b_error"),
        derive_next_attempt_at=bindparam("b_next"),
        derive_lease_expires_at=None,
        derive_attempts=_imports.c.derive_attempts - bindparam("b_refund", type_=Integer),
        raw_transcript_content=func.coalesce(
            bindparam("b_transcript", type_=Text), _imports.c.raw_transcript_content
        ),
        updated_at=bindparam("b_now"),
    )
)


def _write(
    factory: sessionmaker[Session],
    ready: list[_Work],
    failures: list[tuple[SessionImport, _Outcome]],
    outcomes: dict[uuid.UUID, _Outcome],
    now: datetime,
) -> set[uuid.UUID]:
    """Write the sessions, stage rows and messages and finish the imports in one transaction; return the
    ids of the imports recorded."""
    with factory.begin() as db:
        if ready:
            new_sessions = _upsert_sessions(db, ready, outcomes, now)
            _record_stages(db, ready, outcomes, new_sessions, now)
            _replace_messages(db, ready, outcomes, new_sessions, now)
        return _finish_imports(db, [*failures, *((work.row, outcomes[work.row.id]) for work in ready)], now)


def _write_isolating(
    factory: sessionmaker[Session],
    ready: list[_Work],
    failures: list[tuple[SessionImport, _Outcome]],
    outcomes: dict[uuid.UUID, _Outcome],
    now: datetime,
) -> set[uuid.UUID]:
    """:func:`_write`, split in halves while the database refuses it, until the refused import is alone.

    That import is then FAILED with the database's reason (not retried by itself: the same row would be
    refused again) and its outcome replaced, so it is neither counted as completed nor handed on. Anything but
    a refusal of the data (an outage, a bug) is raised: the actor retries the chunk.
    """
    recorded: set[uuid.UUID] = set()
    parts = [(ready, failures)]
    while parts:
        part, part_failures = parts.pop()
        try:
            recorded |= _write(factory, part, part_failures, outcomes, now)
        except WRITE_ERRORS as exc:
            reason = refusal_reason(exc)
            if reason is None or not part:
                raise
            if len(part) > 1:
                middle = len(part) // 2
                parts += [(part[middle:], []), (part[:middle], part_failures)]
                continue
            row = part[0].row
            logger.warning("the database refused the session of import %s: %s", row.id, reason)
            outcomes[row.id] = _Outcome(
                ProcessingStatus.FAILED, f"the database refused the session: {reason}"
            )
            recorded |= _write(factory, [], [*part_failures, (row, outcomes[row.id])], outcomes, now)
    return recorded


def process_imports(
    engine: Engine,
    settings: Settings,
    import_ids: Sequence[uuid.UUID],
    *,
    fetcher: Fetcher,
    hand_over: Callable[[list[uuid.UUID]], None],
) -> ImportProcessingResult:
    """Derive the Sessions of ``import_ids`` (those this worker can claim) and hand on the analysable ones.

    Everything but the claim happens in one transaction after the transcripts are fetched, so a worker that
    dies leaves no half-made session behind: its lease runs out and the sweep sends the imports again.
    """
    factory = sessionmaker(engine, expire_on_commit=False)
    now = utcnow()
    works = _claim(factory, settings, import_ids, now)
    if not works:
        return ImportProcessingResult(0, 0, 0, 0, [])

    failures: list[tuple[SessionImport, _Outcome]] = []
    ready: list[_Work] = []
    for work in works:
        if work.row.derive_attempts > settings.import_processing_max_attempts:
            gave_up = (
                f"gave up after {settings.import_processing_max_attempts} attempts: "
                f"{work.row.derive_error or 'the worker kept dying'}"
            )
            failures.append((work.row, _Outcome(ProcessingStatus.FAILED, gave_up)))
        elif bad_time := _parse_times(work):
            failures.append((work.row, _Outcome(ProcessingStatus.FAILED, bad_time)))
        else:
            ready.append(work)

    requests: dict[uuid.UUID, TranscriptRequest] = {}
    unreadable: dict[uuid.UUID, TranscriptOutcome] = {}
    for work in ready:
        if work.row.raw_transcript_content is not None or not work.row.full_transcript_url:
            continue
        try:
            credentials = company_credentials(settings, work.company)
        except (RuntimeError, ValueError) as exc:
            # Without the company's credentials the fetch would only earn a misleading 401.
            unreadable[work.row.id] = TranscriptOutcome(None, str(exc))
            continue
        requests[work.row.id] = TranscriptRequest(
            work.row.full_transcript_url, credentials, work.company.allow_private_networks
        )
    fetched = {
        **unreadable,
        **fetch_transcripts(
            fetcher,
            requests,
            concurrency=settings.transcript_fetch_concurrency,
            max_chunk_bytes=settings.import_processing_max_chunk_bytes,
        ),
    }
    outcomes = {work.row.id: _decide(work, fetched.get(work.row.id), settings, now) for work in ready}
    recorded = _write_isolating(factory, ready, failures, outcomes, now)
    analysable = [
        work.session_id
        for work in ready
        if work.session_id is not None and work.row.id in recorded and outcomes[work.row.id].analysable
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
    send_in_chunks(analysable, settings.session_processing_batch_size, hand_over)
    return ImportProcessingResult(len(works), completed, failed, retrying, analysable)
