"""Ingesting a finished batch: its output and error files, applied by ``custom_id``, exactly once.

Both files are streamed (never read whole) and applied in chunks. A good line updates its request (tokens,
cost with the Batch discount) and its session exactly as the synchronous path does. A failed line (an HTTP
error body, an ``error`` object, an answer that fails validation) records its real message; its session
gets a new pending request for the next batch until ``BATCH_MAX_ATTEMPTS``, then AI_ANALYSIS is FAILED for
good (or, with ``BATCH_SYNC_FALLBACK``, analysed once synchronously). Requests that appear in neither file
(an expired or cancelled batch) go the same way. Only requests still BATCHING_IN_PROGRESS in this batch are
touched, so ingesting the same file twice changes nothing. The batch ends PROCESSED with its counts, tokens
and cost. Every request's budget reservation is settled in the transaction that records its result: replaced
by what its answer cost, or released if it was not billed (``pipeline/stages/budgets.py``).

Each chunk is one transaction of a fixed number of statements: on PostgreSQL its request rows, answers and
questions are copied into temporary tables and applied with one ``UPDATE ... FROM`` (or ``INSERT ...
SELECT``) per table, sent in libpq's pipeline mode while the next chunk is read and prepared on a second
connection (:class:`_PipelinedChunk`); the embedded SQLite gets the same writes row by row. A chunk the
database refuses for
its data (:mod:`pipeline.db.refusals`) is split in halves until the refused line is alone; that line is
recorded as a failed line with the database's reason (its session asks again in a later batch) and the
others land, so a batch is never stuck on one line. A line read and checked is kept
as plain values, not as the pydantic models it was checked with: thousands of those alive at once cost
more in garbage collection than the validation itself. The usual line, an answered request, is read and
checked in one pass from its text (:mod:`pipeline.stages.batch_output`); any other the general way, from its
parsed JSON and the SDK's ``ChatCompletion``, with the same outcome.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, cast

import openai
import psycopg
from openai.types.chat import ChatCompletion
from pydantic import ValidationError
from pydantic_core import from_json
from sqlalchemy import Engine, Table, TextClause, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from pipeline import metrics
from pipeline.analysis import InvalidAnalysis, SessionAnalysis, checked_analysis, parse_analysis
from pipeline.db.bulk import bulk_insert, bulk_update, is_postgresql, staged_insert, staged_update
from pipeline.db.enums import AIBatchRequestStatus, AIRequestStatus, ProcessingStage, ProcessingStatus
from pipeline.db.models import AIBatchRequest, AIProcessingRequest, ChatSession, SessionProcessingStatus
from pipeline.db.refusals import WRITE_ERRORS, refusal_reason
from pipeline.db.types import utcnow
from pipeline.settings import Settings
from pipeline.stages.analysis_results import (
    USAGE_COLUMNS,
    Answer,
    PriceCache,
    answer_json,
    answer_of,
    complete_analyses,
    first_message,
    priced,
    record_usage,
    staged_completion,
    usage_values,
)
from pipeline.stages.batch_enqueue import pending_request
from pipeline.stages.batch_output import AnsweredLine, answered_line, message_of, usage_of
from pipeline.stages.budgets import Settlement, settle, to_eur
from pipeline.stages.stage_status import StageChange, apply_stage_changes

__all__ = [
    "CHUNK_LINES",
    "REQUEST_COLUMNS",
    "IngestResult",
    "OpenRequest",
    "ingest_batch",
    "open_requests",
    "release_requests",
    "release_reservations",
    "write_chunk",
]

logger = logging.getLogger(__name__)

#: Lines per transaction: enough that the per-statement costs vanish beside the per-row ones.
CHUNK_LINES = 5000
_requests = cast(Table, AIProcessingRequest.__table__)
_batches = cast(Table, AIBatchRequest.__table__)

#: The request-row columns an ingested line sets: what the answer says, its cost, then the outcome.
REQUEST_COLUMNS = (
    *USAGE_COLUMNS,
    "prompt_token_cost",
    "completion_token_cost",
    "total_cost_eur",
    "cost_known",
    "success",
    "answer",
    "error_message",
    "processing_status",
    "completed_at",
)
#: The usage and cost columns of a line that was not billed: no tokens, no cost.
_NOT_BILLED: tuple[Any, ...] = (*[None] * 3, 0, 0, 0, *[None] * 6, 0.0, 0.0, 0.0, True)


def write_chunk(
    db: Session, request_rows: list[tuple[Any, ...]], answers: dict[uuid.UUID, Answer], now: datetime
) -> None:
    """Write a chunk's results: one statement per table on PostgreSQL, whatever the chunk's size.

    ``request_rows`` are the key then ``REQUEST_COLUMNS`` of each line's request; ``answers`` are applied
    to their sessions (AI fields, questions) and complete both AI stages.
    """
    bulk_update(db, _requests, "id", REQUEST_COLUMNS, request_rows)
    complete_analyses(db, answers, now)


def _request_row(
    request: OpenRequest,
    now: datetime,
    error: str | None,
    billed: tuple[Any, ...] = _NOT_BILLED,
    answer: Answer | None = None,
) -> tuple[Any, ...]:
    """The key and new values (``REQUEST_COLUMNS``) of a request row: answered unless ``error``."""
    status = AIRequestStatus.PROCESSING_COMPLETE if error is None else AIRequestStatus.PROCESSING_FAILED
    kept = answer_json(answer) if answer is not None and error is None else None
    return (request.id, *billed, error is None, kept, error, status.value, now)


@dataclass
class IngestResult:
    completed: int = 0
    failed: int = 0
    missing: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_eur: float = 0.0
    fallback: list[uuid.UUID] = field(default_factory=list)


class OpenRequest(NamedTuple):
    """A request of the batch still waiting for its result.

    A named tuple, built straight from its query's row: a batch has tens of thousands of them.
    """

    id: uuid.UUID
    session_id: uuid.UUID
    model: str
    requested_at: datetime
    attempts: int
    company_id: uuid.UUID
    #: What it holds of its company's budget, in ``reserved_month`` (None: nothing reserved).
    reserved_eur: Decimal
    reserved_month: date | None
    analysis_key: str | None
    estimated_prompt_tokens: int


class _Settlements:
    """Requests' reservations replaced by what they cost, summed per company month as they come.

    The sums :func:`settle` would make of one :class:`Settlement` per request (sums of decimals are exact, in
    any order), without building and keeping one object for each of a chunk's thousands of requests.
    """

    def __init__(self) -> None:
        self._totals: defaultdict[tuple[uuid.UUID, date], list[Decimal]] = defaultdict(
            lambda: [Decimal(0), Decimal(0)]
        )

    def add(self, request: OpenRequest, cost: Decimal) -> None:
        """``request``'s reservation replaced by ``cost``; nothing when it reserved nothing."""
        if request.reserved_month is None:
            return
        total = self._totals[(request.company_id, request.reserved_month)]
        total[0] += Decimal(request.reserved_eur)
        total[1] += cost

    def settle(self, db: Session) -> None:
        """Apply the sums (:func:`settle`); the caller commits."""
        settle(db, [Settlement(*key, reserved, cost) for key, (reserved, cost) in self._totals.items()])


def release_reservations(db: Session, requests: list[OpenRequest]) -> None:
    """Give back what requests that were not billed held of their budgets; the caller commits."""
    settlements = _Settlements()
    for request in requests:
        settlements.add(request, Decimal(0))
    settlements.settle(db)


def _lines(client: openai.OpenAI, file_id: str) -> Iterator[str]:
    with client.files.with_streaming_response.content(file_id) as response:
        for line in response.iter_lines():
            if line.strip():
                yield line


def _error_of(line: dict[str, Any]) -> str:
    error = line.get("error")
    if isinstance(error, dict) and error.get("message"):
        return f"{error.get('code') or 'error'}: {error['message']}"
    response = line.get("response") or {}
    body = response.get("body") or {}
    message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
    return f"HTTP {response.get('status_code')}: {message or 'no error message'}"


#: Why an answer was not applied: its session's AI analysis was restarted after the request was made.
SUPERSEDED = "superseded: the session was derived again after this request was sent"


#: A session's AI analysis as :func:`_is_superseded` reads it: status and start; ``None``: it has none.
_Analysis = tuple[ProcessingStatus, datetime | None] | None
#: What a session left out by :func:`_current_analyses` stands for: an analysis its request belongs to.
_CURRENT: _Analysis = (ProcessingStatus.IN_PROGRESS, None)


def _current_analyses(db: Session, requests: list[OpenRequest]) -> dict[uuid.UUID, _Analysis]:
    """The AI analyses of the requests' sessions; on PostgreSQL only those that may have moved on.

    Left out there: an analysis in progress that started before its session's request or did not start,
    the usual case, of which :func:`_is_superseded` says what it says of ``_CURRENT``. Thousands of rows
    fewer to read, convert and keep in each chunk.
    """
    if is_postgresql(db):
        return _changed_analyses(db, requests)
    session_ids = [request.session_id for request in requests]
    # Core, not the ORM: plain rows, nothing to load into objects.
    rows = db.connection().execute(
        select(
            SessionProcessingStatus.session_id,
            SessionProcessingStatus.status,
            SessionProcessingStatus.started_at,
        ).where(
            SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
            SessionProcessingStatus.session_id.in_(session_ids),
        )
    )
    found = {session_id: (status, started_at) for session_id, status, started_at in rows}
    return {session_id: found.get(session_id) for session_id in session_ids}


#: The AI analyses of a chunk's sessions that may be newer than the request of each: not in progress,
#: started after the request, or none at all (joined from the arrays: a session without its row comes back
#: with nulls). The arrays are binary parameters (``%b``): one array parameter, as an IN list of thousands
#: takes longer to build and to plan than to run, and psycopg's text form of an array matches every element
#: against a regular expression (about ten times the CPU, 5 µs a line for these two).
_CHANGED_ANALYSES = """SELECT chunk.session_id, analysis.status, analysis.started_at
FROM unnest(%b::uuid[], %b::timestamptz[]) AS chunk(session_id, requested_at)
LEFT JOIN session_processing_status AS analysis
    ON analysis.session_id = chunk.session_id AND analysis.stage = %s
WHERE analysis.session_id IS NULL OR analysis.status <> %s OR analysis.started_at > chunk.requested_at"""


def _changed_analyses(db: Session, requests: list[OpenRequest]) -> dict[uuid.UUID, _Analysis]:
    """PostgreSQL: the analyses :data:`_CHANGED_ANALYSES` finds, as :func:`_current_analyses` gives them."""
    driver: Any = db.connection().connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(
            _CHANGED_ANALYSES,
            (
                [request.session_id for request in requests],
                [request.requested_at for request in requests],
                ProcessingStage.AI_ANALYSIS.value,
                ProcessingStatus.IN_PROGRESS.value,
            ),
        )
        rows = cursor.fetchall()
    return {session_id: _analysis(status, started_at) for session_id, status, started_at in rows}


def _analysis(status: str | None, started_at: datetime | None) -> _Analysis:
    """A row of :data:`_CHANGED_ANALYSES` typed as the ORM's columns give it: an enum, a time in UTC."""
    if status is None:
        return None
    return ProcessingStatus(status), None if started_at is None else started_at.astimezone(UTC)


def _is_superseded(request: OpenRequest, analysis: _Analysis) -> bool:
    """A request answers its session only while that session's analysis is the one the request belongs to."""
    if analysis is None:
        return True
    status, started_at = analysis
    return status is not ProcessingStatus.IN_PROGRESS or (
        started_at is not None and started_at > request.requested_at
    )


def _restarted(analysis: _Analysis) -> bool:
    """Whether a superseded request's session is being analysed again: it then gets a fresh request."""
    return analysis is not None and analysis[0] is ProcessingStatus.IN_PROGRESS


def _afresh(requests: list[OpenRequest], now: datetime) -> list[dict[str, Any]]:
    """New requests (first attempt) for sessions whose analysis restarted while a batch had them."""
    return [
        pending_request(
            r.session_id,
            r.model,
            now,
            key=None,  # its transcript changed: its key is not known any more
            estimated_prompt_tokens=r.estimated_prompt_tokens,
        )
        for r in requests
    ]


def release_requests(
    db: Session,
    failed: list[tuple[OpenRequest, str]],
    settings: Settings,
    now: datetime,
    result: IngestResult,
) -> list[StageChange]:
    """Send failed requests' sessions back to pending (a new request) under the cap; fail them past it."""
    retries, changes = _released(failed, settings, now, result)
    bulk_insert(db, _requests, retries)
    return changes


def _released(
    failed: list[tuple[OpenRequest, str]], settings: Settings, now: datetime, result: IngestResult
) -> tuple[list[dict[str, Any]], list[StageChange]]:
    """What :func:`release_requests` writes: the new pending requests, and the stage changes of the rest."""
    retries = [
        pending_request(
            request.session_id,
            request.model,
            now,
            attempt=request.attempts + 1,
            note=f"previous attempt: {reason}",
            key=request.analysis_key,
            estimated_prompt_tokens=request.estimated_prompt_tokens,
        )
        for request, reason in failed
        if request.attempts < settings.batch_max_attempts
    ]
    final = [
        (request, reason) for request, reason in failed if request.attempts >= settings.batch_max_attempts
    ]
    if settings.batch_sync_fallback:
        result.fallback += [request.session_id for request, _ in final]
        return retries, [
            StageChange(request.session_id, ProcessingStage.AI_ANALYSIS, ProcessingStatus.PENDING)
            for request, _ in final
        ]
    return retries, [
        StageChange(
            request.session_id,
            ProcessingStage.AI_ANALYSIS,
            ProcessingStatus.FAILED,
            f"{reason} (gave up after {request.attempts} batch attempts)",
        )
        for request, reason in final
    ]


@dataclass
class _Usage:
    """Billed tokens and cost of one model's answers in a chunk, counted in the metrics once per chunk."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_eur: float = 0.0
    unknown_prices: int = 0


class _Line(NamedTuple):
    """One line read and checked, reduced to plain values until its chunk is written.

    ``usage`` holds the ``USAGE_COLUMNS`` of a billed answer (``None``: not billed); ``outcome`` is the
    answer to apply or why the line failed.
    """

    request: OpenRequest
    usage: tuple[Any, ...] | None
    outcome: Answer | str


def _read(request: OpenRequest, line: dict[str, Any], max_question_chars: int) -> _Line:
    """Check one parsed line of an output or error file, whatever it holds: all that needs no database."""
    response = line.get("response") or {}
    if response.get("status_code") != 200 or line.get("error"):
        return _Line(request, None, _error_of(line))
    try:
        completion = ChatCompletion.model_validate(response.get("body"))
    except ValidationError as exc:
        return _Line(request, None, f"unreadable completion: {exc.errors()[0]['msg']}")
    content, refusal = first_message(completion)
    return _answered(
        request,
        usage_values(completion),
        lambda session_id: parse_analysis(content, refusal=refusal, expected_session_id=session_id),
        response.get("request_id"),
        max_question_chars,
    )


def _read_answered(request: OpenRequest, line: AnsweredLine, max_question_chars: int) -> _Line:
    """What :func:`_read` gives for a line :func:`answered_line` accepted, its answer validated already."""
    response = line["response"]
    completion = response["body"]
    validated, refusal = message_of(completion)
    return _answered(
        request,
        usage_of(completion),
        lambda session_id: checked_analysis(validated, refusal=refusal, expected_session_id=session_id),
        response.get("request_id"),
        max_question_chars,
    )


def _answered(
    request: OpenRequest,
    usage: tuple[Any, ...],
    analyse: Callable[[str], SessionAnalysis],
    request_id: str | None,
    max_question_chars: int,
) -> _Line:
    """A readable completion's line: the answer ``analyse`` finds in it for the request's session, or why
    there is none (billed all the same)."""
    try:
        analysis = analyse(str(request.session_id))
    except InvalidAnalysis as exc:
        return _Line(request, usage, f"invalid answer: {exc.reason}")
    return _Line(
        request, usage, answer_of(analysis, request.model, request_id, max_question_chars=max_question_chars)
    )


def _read_text(text: str, waiting: dict[str, OpenRequest], max_question_chars: int) -> _Line | None:
    """The line ``text`` read and checked if it answers a waiting request (taken out of ``waiting``)."""
    answered = answered_line(text)
    if answered is not None:
        request = waiting.pop(answered["custom_id"], None)
        return None if request is None else _read_answered(request, answered, max_question_chars)
    # Anything else (an error line, an unusual completion, not JSON at all) the general way, as always.
    # pydantic's JSON parser (jiter): the objects json.loads gives, in a third of the time.
    line = from_json(text)
    request = waiting.pop(str(line.get("custom_id")), None)
    return None if request is None else _read(request, line, max_question_chars)


@dataclass
class _ChunkWrites:
    """What one chunk of lines writes, worked out from the lines and the database before any write."""

    #: The key then ``REQUEST_COLUMNS`` of each line's request.
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    #: The answers to apply, by session.
    answers: dict[uuid.UUID, Answer] = field(default_factory=dict)
    #: New pending requests: retries of failed lines, and fresh ones for sessions analysed again meanwhile.
    new_requests: list[dict[str, Any]] = field(default_factory=list)
    #: The stage changes of failed lines past ``BATCH_MAX_ATTEMPTS``.
    changes: list[StageChange] = field(default_factory=list)
    settlements: _Settlements = field(default_factory=_Settlements)
    usage: defaultdict[str, _Usage] = field(default_factory=lambda: defaultdict(_Usage))
    failed: int = 0
    released: IngestResult = field(default_factory=IngestResult)

    def add_to_batch(self, db: Session, batch_id: uuid.UUID) -> None:
        """Add the chunk's answered and failed lines, tokens and cost to its batch, in the chunk's own
        transaction: an ingestion that stops half way leaves its batch counting exactly what it committed."""
        db.connection().execute(
            update(_batches)
            .where(_batches.c.id == batch_id)
            .values(
                completed_count=_batches.c.completed_count + len(self.answers),
                failed_count=_batches.c.failed_count + self.failed,
                prompt_tokens=_batches.c.prompt_tokens + sum(u.prompt_tokens for u in self.usage.values()),
                completion_tokens=_batches.c.completion_tokens
                + sum(u.completion_tokens for u in self.usage.values()),
                total_cost_eur=_batches.c.total_cost_eur + sum(u.cost_eur for u in self.usage.values()),
            )
        )

    def count(self, result: IngestResult) -> None:
        """Count the committed chunk: a chunk that rolls back is ingested again later (or in parts)."""
        result.fallback += self.released.fallback
        for model_name, billed_usage in self.usage.items():
            record_usage(
                model_name,
                "batch",
                billed_usage.prompt_tokens,
                billed_usage.completion_tokens,
                billed_usage.cost_eur,
                billed_usage.unknown_prices,
            )
            result.prompt_tokens += billed_usage.prompt_tokens
            result.completion_tokens += billed_usage.completion_tokens
            result.cost_eur += billed_usage.cost_eur
        metrics.AI_ANALYSES.labels("batch").inc(len(self.answers))
        result.completed += len(self.answers)
        result.failed += self.failed


@dataclass(frozen=True)
class _Ingestion:
    """What every chunk of one batch's ingestion shares."""

    factory: sessionmaker[Session]
    settings: Settings
    batch_id: uuid.UUID
    #: Prices looked up once per model and day for the whole ingestion.
    prices: PriceCache


def _chunk_writes(db: Session, ingestion: _Ingestion, lines: list[_Line], now: datetime) -> _ChunkWrites:
    """Work out what ``lines`` write: the request rows, the answers, the new requests, the settlements."""
    writes = _ChunkWrites()
    failed: list[tuple[OpenRequest, str]] = []
    superseded: list[OpenRequest] = []
    current = _current_analyses(db, [line.request for line in lines])
    for request, billed, outcome in lines:
        # A session derived again after this prompt was sent: its answer describes an older conversation.
        # It is recorded (its cost counted, if billed) but not applied; a fresh request takes its place.
        stale = _is_superseded(request, current.get(request.session_id, _CURRENT))
        error = SUPERSEDED if stale else outcome if isinstance(outcome, str) else None
        if billed is None:
            writes.rows.append(_request_row(request, now, error))
            writes.settlements.add(request, Decimal(0))
        else:
            # Paid for: its tokens and cost are recorded whether its answer is used or not.
            prompt_tokens, completion_tokens = billed[3], billed[4]
            cost = priced(
                db,
                request.model,
                prompt_tokens,
                completion_tokens,
                request.requested_at,
                ingestion.settings,
                True,
                ingestion.prices,
            )
            model = writes.usage[request.model]
            model.prompt_tokens += prompt_tokens
            model.completion_tokens += completion_tokens
            model.cost_eur += cost.total_eur
            model.unknown_prices += not cost.known
            priced_row = (cost.prompt_unit_usd, cost.completion_unit_usd, cost.total_eur, cost.known)
            answer = None if error is not None or isinstance(outcome, str) else outcome
            writes.rows.append(_request_row(request, now, error, (*billed, *priced_row), answer))
            writes.settlements.add(request, to_eur(cost.total_eur))
        if stale:
            superseded.append(request)
        elif isinstance(outcome, str):
            failed.append((request, outcome))
        else:
            writes.answers[request.session_id] = outcome
    retries, writes.changes = _released(failed, ingestion.settings, now, writes.released)
    writes.new_requests = retries + _afresh([r for r in superseded if _restarted(current[r.session_id])], now)
    writes.failed = len(failed)
    return writes


def _apply_chunk(ingestion: _Ingestion, lines: list[_Line], result: IngestResult) -> None:
    """Apply one chunk of lines in one transaction, and wait for it: the same few statements, whatever the
    chunk's size."""
    now = utcnow()
    with ingestion.factory.begin() as db:
        writes = _chunk_writes(db, ingestion, lines, now)
        write_chunk(db, writes.rows, writes.answers, now)
        # After the requests they follow are closed: a session never has two open requests.
        bulk_insert(db, _requests, writes.new_requests)
        apply_stage_changes(db, writes.changes, now)
        writes.add_to_batch(db, ingestion.batch_id)
        # Last, so that the companies' month rows are locked only for the end of the transaction.
        writes.settlements.settle(db)
    writes.count(result)


class _PipelinedChunk:
    """A chunk's writes on PostgreSQL in a transaction of its own: prepared, sent in pipeline mode, finished.

    Prepared (:meth:`__init__`): what needs an answer from the server, waited for: the chunk's analyses read,
    its values copied into temporary tables (``COPY`` cannot be pipelined). That takes no lock on a shared
    row, so the next chunk is prepared on a connection of its own while the server applies this one. Sent
    (:meth:`send`, once the chunk before is committed, so that two chunks never wait for each other's locks):
    the statements that apply the values, the stage changes and the budget settlement, without waiting; the
    caller reads and prepares the next chunk meanwhile. Finished (:meth:`finish`): waited for and committed.

    A chunk whose preparation or statements fail, whether the error comes at a send or at the wait, is rolled
    back and applied again without the pipeline (:func:`_apply_isolating`), which isolates a refused line and
    raises anything else, as for any chunk: when the server refuses a statement, the pipeline may report only
    that those after it were aborted. The transaction stays open while the next chunk is read and prepared (a
    few hundred milliseconds): its rows, and its companies' month rows, stay locked that long.
    """

    def __init__(self, ingestion: _Ingestion, lines: list[_Line]) -> None:
        self._ingestion = ingestion
        self._lines = lines
        self._db = ingestion.factory()
        self._pipeline: Any = None
        self._failed = False
        self._closed = False
        self._now = utcnow()
        self._statements: list[tuple[TextClause, dict[str, Any]]] = []
        with self._failing_on_database_errors():
            self._db.begin()
            self._writes = _chunk_writes(self._db, ingestion, lines, self._now)
            self._statements = [
                (text(staged_update(self._db, _requests, "id", REQUEST_COLUMNS, self._writes.rows)), {}),
                *staged_completion(self._db, self._writes.answers, self._now),
            ]
            inserted = staged_insert(self._db, _requests, self._writes.new_requests)
            if inserted is not None:
                # After the requests they follow are closed: a session never has two open requests.
                self._statements.append((text(inserted), {}))

    def send(self) -> None:
        """Send the chunk's statements without waiting for them."""
        if self._failed:
            return
        with self._failing_on_database_errors():
            driver: Any = self._db.connection().connection.driver_connection
            self._pipeline = driver.pipeline()
            self._pipeline.__enter__()
            for statement, parameters in self._statements:
                self._db.execute(statement, parameters)
            apply_stage_changes(self._db, self._writes.changes, self._now)
            self._writes.add_to_batch(self._db, self._ingestion.batch_id)
            self._writes.settlements.settle(self._db)

    def finish(self, result: IngestResult) -> None:
        """Wait for the chunk's statements and commit, or, if one failed, apply the chunk again without the
        pipeline. A failed commit is raised as it is: the chunk may have landed, and the actor's retry
        ingests only what is still open."""
        if not self._failed:
            try:
                self._pipeline.__exit__(None, None, None)
            except psycopg.Error:
                self._failed = True
        if self._failed:
            self.abandon()
            _apply_isolating(self._ingestion, self._lines, result)
            return
        self._pipeline = None
        try:
            self._db.commit()
        finally:
            self.abandon()
        self._writes.count(result)

    def abandon(self) -> None:
        """End the pipeline, if open, and roll the chunk back."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._pipeline is not None:
                with suppress(psycopg.Error):
                    self._pipeline.__exit__(None, None, None)
        finally:
            self._db.close()

    @contextmanager
    def _failing_on_database_errors(self) -> Iterator[None]:
        """A database error marks the chunk failed (:meth:`finish` applies it again); any other ends it."""
        try:
            yield
        except (DBAPIError, psycopg.Error):
            # Whichever call reads the results next reports a statement's error, a send included.
            self._failed = True
        except BaseException:
            self.abandon()
            raise


def _apply_isolating(ingestion: _Ingestion, lines: list[_Line], result: IngestResult) -> None:
    """Apply ``lines``; a part the database refuses is split in halves until the refused line is alone.

    The refused line is then applied as a failed line with the database's reason, its usage still recorded.
    Anything but a refusal of the data (an outage, a bug) is raised: the actor retries the batch.
    """
    parts = [lines]
    while parts:
        part = parts.pop()
        try:
            _apply_chunk(ingestion, part, result)
        except WRITE_ERRORS as exc:
            reason = refusal_reason(exc)
            if reason is None:
                raise
            if len(part) > 1:
                middle = len(part) // 2
                parts += [part[middle:], part[:middle]]
                continue
            request, usage, _ = part[0]
            logger.warning("the database refused the answer of request %s: %s", request.id, reason)
            refused = _Line(request, usage, f"the database refused the answer: {reason}")
            _apply_chunk(ingestion, [refused], result)


def _chunks(
    client: openai.OpenAI, file_ids: list[str], waiting: dict[str, OpenRequest], settings: Settings
) -> Iterator[list[_Line]]:
    """The lines of the files that answer a waiting request (taken out of ``waiting``), read and checked."""
    chunk: list[_Line] = []
    for file_id in file_ids:
        for line_text in _lines(client, file_id):
            line = _read_text(line_text, waiting, settings.ai_question_max_chars)
            if line is None:
                continue
            chunk.append(line)
            if len(chunk) == CHUNK_LINES:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def open_requests(db: Session, batch_id: uuid.UUID) -> list[OpenRequest]:
    """The requests of a batch still waiting for their result."""
    # The columns in the order of OpenRequest's fields: each row becomes one as it is, with no dict between.
    rows = db.connection().execute(
        select(
            AIProcessingRequest.id,
            AIProcessingRequest.session_id,
            AIProcessingRequest.model,
            AIProcessingRequest.requested_at,
            AIProcessingRequest.attempts,
            ChatSession.company_id,
            AIProcessingRequest.reserved_eur,
            AIProcessingRequest.reserved_month,
            AIProcessingRequest.analysis_key,
            AIProcessingRequest.estimated_prompt_tokens,
        )
        .join(ChatSession, ChatSession.id == AIProcessingRequest.session_id)
        .where(
            AIProcessingRequest.batch_id == batch_id,
            AIProcessingRequest.processing_status == AIRequestStatus.BATCHING_IN_PROGRESS,
        )
    )
    assert tuple(rows.keys()) == OpenRequest._fields
    return [OpenRequest._make(row) for row in rows]


def ingest_batch(
    engine: Engine,
    settings: Settings,
    client: openai.OpenAI,
    batch_id: uuid.UUID,
    *,
    remote_status: str,
    output_file_id: str | None,
    error_file_id: str | None,
) -> IngestResult:
    """Apply a finished batch's files, re-queue what has no result, and mark the batch PROCESSED."""
    factory = sessionmaker(engine, expire_on_commit=False)
    ingestion = _Ingestion(factory, settings, batch_id, {})
    result = IngestResult()
    with factory() as db:
        waiting = {str(request.id): request for request in open_requests(db, batch_id)}
    file_ids = [file_id for file_id in (output_file_id, error_file_id) if file_id is not None]
    sent: _PipelinedChunk | None = None
    prepared: _PipelinedChunk | None = None
    try:
        # On PostgreSQL the next chunk is read, checked and prepared (the worker's CPU, another connection)
        # while the chunk before it is applied (the server's): see _PipelinedChunk.
        for chunk in _chunks(client, file_ids, waiting, settings):
            if engine.dialect.name != "postgresql":
                _apply_isolating(ingestion, chunk, result)
                continue
            prepared = _PipelinedChunk(ingestion, chunk)
            if sent is not None:
                sent.finish(result)
            sent, prepared = prepared, None
            sent.send()
        if sent is not None:
            sent.finish(result)
            sent = None
    finally:
        # The file could not be read to its end, or a chunk failed: nothing of those in flight is kept.
        for chunk_in_flight in (prepared, sent):
            if chunk_in_flight is not None:
                chunk_in_flight.abandon()
    now = utcnow()
    with factory.begin() as db:
        if waiting:
            reason = f"no result in the {remote_status} batch"
            bulk_update(
                db,
                _requests,
                "id",
                REQUEST_COLUMNS,
                [_request_row(request, now, reason) for request in waiting.values()],
            )
            apply_stage_changes(
                db,
                release_requests(
                    db, [(request, reason) for request in waiting.values()], settings, now, result
                ),
                now,
            )
            release_reservations(db, list(waiting.values()))
            result.missing = len(waiting)
        db.execute(
            update(AIBatchRequest)
            .where(AIBatchRequest.id == batch_id)
            .values(
                status=AIBatchRequestStatus.PROCESSED,
                processed_at=now,
                lease_expires_at=None,
                output_file_id=output_file_id,
                error_file_id=error_file_id,
                # The chunks added their lines as they were committed (_ChunkWrites.add_to_batch).
                failed_count=AIBatchRequest.failed_count + result.missing,
                error_message=None
                if remote_status == "completed"
                else f"batch {remote_status}; partial results",
            )
        )
    return result
