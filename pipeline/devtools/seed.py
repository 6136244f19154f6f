"""Seeding a database with what a year of many companies leaves behind, straight through ``COPY``.

``livedash devtools seed`` writes N companies and M sessions spread over the last year into a migrated
PostgreSQL database, with every state the pipeline meets: imported but not derived (and leased by a live or
a dead worker), derivation failed with its retry due and not due, derived and waiting for AI, analysing,
waiting for a batch, in an open batch, analysed, AI failed with retries due, not due and given up, batches
open and finished, scheduler ticks and runs, CSV fetch history and row errors. It is what ``bench/scale.py``
measures the periodic and operator queries on, and what the ``EXPLAIN`` tests check the query plans of.

Speed is the point (a million sessions in a few minutes on two cores): rows are generated in Python and
streamed with ``COPY``, ids are time-ordered (every primary key and ``session_id`` index is appended to, not
written at random places), and the share of each state is fixed by the session's index, not drawn, so the
same arguments give the same database. The newest sessions hold the work in flight, as in a live system.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, text

from pipeline.db.enums import (
    AIBatchRequestStatus,
    AIRequestStatus,
    CompanyStatus,
    CsvFetchOutcome,
    ProcessingStage,
    ProcessingStatus,
    SchedulerRunStatus,
    TickOutcome,
)

__all__ = ["SeedPlan", "SeedReport", "SessionState", "seed_database", "session_state"]

#: Share, in thousandths, of the newest sessions that hold the work in flight (the rest is history).
IN_FLIGHT_SHARE = 50
#: Requests per finished batch, per company.
BATCH_SIZE = 25
#: Messages of one derived session: between 4 and 11, 7.5 on average.
MESSAGES_MIN, MESSAGES_SPREAD = 4, 8
#: Distinct questions shared by all sessions (as the real question table is, across tenants).
QUESTIONS = 2_000
MODEL = "gpt-4o-mini"
#: Time from one CSV fetch of a company to the next (the default cron's every ten minutes).
FETCH_EVERY = timedelta(minutes=10)
#: Seeded fetches with invalid rows, one in this many, each with a few row errors.
FETCH_WITH_ERRORS_EVERY = 20
SCHEDULER_JOBS = (
    ("csv-import", timedelta(minutes=10)),
    ("import-processing", timedelta(minutes=1)),
    ("session-processing", timedelta(minutes=1)),
    ("batch-processing", timedelta(minutes=5)),
    ("batch-processing-check", timedelta(minutes=2)),
)


class SessionState(IntEnum):
    """Where one seeded session stands."""

    IMPORTED = 0
    IMPORT_LEASED = 1
    IMPORT_LEASE_EXPIRED = 2
    IMPORT_FAILED_DUE = 3
    IMPORT_FAILED_NOT_DUE = 4
    WAITING_FOR_AI = 5
    ANALYSING = 6
    PENDING_BATCH = 7
    IN_BATCH = 8
    AI_FAILED_DUE = 9
    AI_FAILED_NOT_DUE = 10
    AI_FAILED_FOR_GOOD = 11
    TRANSCRIPT_FAILED = 12
    ANALYSED = 13


#: Thousandths of the in-flight sessions in each state, cumulated (the last bound is 1000).
_IN_FLIGHT = (
    (100, SessionState.IMPORTED),
    (115, SessionState.IMPORT_LEASED),
    (130, SessionState.IMPORT_LEASE_EXPIRED),
    (160, SessionState.IMPORT_FAILED_DUE),
    (190, SessionState.IMPORT_FAILED_NOT_DUE),
    (300, SessionState.WAITING_FOR_AI),
    (320, SessionState.ANALYSING),
    (500, SessionState.PENDING_BATCH),
    (700, SessionState.IN_BATCH),
    (730, SessionState.AI_FAILED_DUE),
    (760, SessionState.AI_FAILED_NOT_DUE),
    (790, SessionState.TRANSCRIPT_FAILED),
    (1000, SessionState.ANALYSED),
)
#: The same for the history: nearly all analysed, a few failed for good.
_HISTORY = (
    (8, SessionState.AI_FAILED_FOR_GOOD),
    (15, SessionState.TRANSCRIPT_FAILED),
    (1000, SessionState.ANALYSED),
)
_NOT_DERIVED = {
    SessionState.IMPORTED,
    SessionState.IMPORT_LEASED,
    SessionState.IMPORT_LEASE_EXPIRED,
    SessionState.IMPORT_FAILED_DUE,
    SessionState.IMPORT_FAILED_NOT_DUE,
}
_AI_FAILED = {SessionState.AI_FAILED_DUE, SessionState.AI_FAILED_NOT_DUE, SessionState.AI_FAILED_FOR_GOOD}


def _spread(index: int) -> int:
    """A well-mixed number in [0, 1000) for a session index (Knuth's multiplicative hash)."""
    return (index * 2_654_435_761 >> 7) % 1000


def session_state(index: int, sessions: int) -> SessionState:
    """The state of session ``index`` (0 the oldest) of ``sessions``; fixed, so runs are reproducible."""
    in_flight = index >= sessions - max(1, sessions * IN_FLIGHT_SHARE // 1000)
    draw = _spread(index)
    for bound, state in _IN_FLIGHT if in_flight else _HISTORY:
        if draw < bound:
            return state
    raise AssertionError("the last bound is 1000")


def seeded_id(table: int, index: int) -> uuid.UUID:
    """Time-ordered ids: one prefix per table, then the row's index, so every primary key is appended to."""
    return uuid.UUID(int=(table << 96) | index)


class _Table(IntEnum):
    COMPANY = 1
    IMPORT = 2
    SESSION = 3
    MESSAGE = 4
    STAGE = 5
    REQUEST = 6
    BATCH = 7
    QUESTION = 8
    SESSION_QUESTION = 9
    FETCH = 10
    ROW_ERROR = 11
    TICK = 12
    RUN = 13


@dataclass(frozen=True)
class SeedPlan:
    """What to seed: sizes, the time it is, and how much history of fetches and scheduler runs."""

    companies: int
    sessions: int
    now: datetime
    fetch_history: timedelta = timedelta(days=2)
    scheduler_history: timedelta = timedelta(days=7)

    def started(self, index: int) -> datetime:
        """Sessions spread evenly over the year before ``now``, oldest first."""
        return self.now - timedelta(days=365) * (1 - index / self.sessions) - timedelta(minutes=30)

    def company(self, index: int) -> int:
        return (index * 7_919) % self.companies


@dataclass
class SeedReport:
    """Rows written per table."""

    rows: dict[str, int]


_Copy = Callable[[str, Sequence[str], Iterable[Sequence[Any]]], int]


def _companies(plan: SeedPlan) -> Iterator[tuple[Any, ...]]:
    statuses = (CompanyStatus.ACTIVE,) * 17 + (
        CompanyStatus.TRIAL,
        CompanyStatus.SUSPENDED,
        CompanyStatus.ARCHIVED,
    )
    created = plan.now - timedelta(days=400)
    for index in range(plan.companies):
        yield (
            seeded_id(_Table.COMPANY, index),
            f"Seeded company {index:05d}",
            statuses[index % len(statuses)].value,
            f"http://127.0.0.1:9/company-{index}/sessions.csv",
            10,
            "UTC",
            created,
            created,
        )


def _import_row(plan: SeedPlan, index: int, state: SessionState) -> tuple[Any, ...]:
    started = plan.started(index)
    derive_status, attempts, lease, next_attempt, error = ProcessingStatus.COMPLETED, 1, None, None, None
    if state is SessionState.IMPORTED:
        derive_status, attempts = ProcessingStatus.PENDING, 0
    elif state in (SessionState.IMPORT_LEASED, SessionState.IMPORT_LEASE_EXPIRED):
        derive_status = ProcessingStatus.IN_PROGRESS
        lease = plan.now + (
            timedelta(minutes=3) if state is SessionState.IMPORT_LEASED else -timedelta(minutes=3)
        )
    elif state in (
        SessionState.IMPORT_FAILED_DUE,
        SessionState.IMPORT_FAILED_NOT_DUE,
        SessionState.TRANSCRIPT_FAILED,
    ):
        derive_status, attempts, error = ProcessingStatus.FAILED, 2, "transcript fetch failed: HTTP 503"
        due = state is SessionState.IMPORT_FAILED_DUE
        # A transcript that kept failing is given up: no retry of its own, only an operator's.
        if state is not SessionState.TRANSCRIPT_FAILED:
            next_attempt = plan.now + (-timedelta(minutes=1) if due else timedelta(minutes=20))
    company = plan.company(index)
    return (
        seeded_id(_Table.IMPORT, index),
        seeded_id(_Table.COMPANY, company),
        f"s-{index:09d}",
        started.strftime("%d.%m.%Y %H:%M:%S"),
        (started + timedelta(minutes=4)).strftime("%d.%m.%Y %H:%M:%S"),
        "NL",
        "nl",
        7,
        f"https://127.0.0.1:9/company-{company}/transcripts/{index}.txt",
        f"{index:064x}",
        derive_status.value,
        started + timedelta(minutes=5),
        attempts,
        lease,
        next_attempt,
        error,
        started + timedelta(minutes=5),
        started + timedelta(minutes=6),
    )


_IMPORT_COLUMNS = (
    "id", "company_id", "external_session_id", "start_time_raw", "end_time_raw", "country_code", "language",
    "messages_sent", "full_transcript_url", "row_hash", "derive_status", "derive_requested_at",
    "derive_attempts", "derive_lease_expires_at", "derive_next_attempt_at", "derive_error", "created_at",
    "updated_at",
)  # fmt: skip
_SESSION_COLUMNS = (
    "id", "company_id", "import_id", "start_time", "end_time", "country", "language", "messages_sent",
    "sentiment", "escalated", "forwarded_hr", "category", "summary", "initial_msg", "created_at",
    "updated_at",
)  # fmt: skip
_MESSAGE_COLUMNS = ("id", "session_id", "timestamp", "role", "content", "order", "created_at")
_STAGE_COLUMNS = (
    "id", "session_id", "stage", "status", "started_at", "completed_at", "error_message", "retry_count",
    "metadata", "lease_expires_at", "leased_by", "attempts", "next_attempt_at", "created_at", "updated_at",
)  # fmt: skip
_REQUEST_COLUMNS = (
    "id", "session_id", "model", "prompt_tokens", "completion_tokens", "total_tokens", "prompt_token_cost",
    "completion_token_cost", "total_cost_eur", "cost_known", "processing_type", "success", "error_message",
    "attempts", "requested_at", "completed_at", "processing_status", "batch_id",
)  # fmt: skip
_BATCH_COLUMNS = (
    "id", "company_id", "model", "idempotency_key", "openai_batch_id", "input_file_id", "output_file_id",
    "status", "request_count", "completed_count", "failed_count", "prompt_tokens", "completion_tokens",
    "total_cost_eur", "submitted_at", "lease_expires_at",
    "created_at", "updated_at", "completed_at", "processed_at",
)  # fmt: skip
_SENTIMENTS = ("POSITIVE", "NEUTRAL", "NEGATIVE")
_CATEGORIES = ("SCHEDULE_HOURS", "LEAVE_VACATION", "SALARY_COMPENSATION", "ONBOARDING", "ACCESS_LOGIN")


@dataclass
class _Batches:
    """Assigns each company's requests to batches: finished ones of ``BATCH_SIZE``, one open per company."""

    plan: SeedPlan
    finished: dict[int, tuple[int, int]]
    open: dict[int, int]
    rows: list[list[Any]]

    @classmethod
    def empty(cls, plan: SeedPlan) -> _Batches:
        return cls(plan, {}, {}, [])

    def _new(self, company: int, status: AIBatchRequestStatus, created: datetime) -> int:
        number = len(self.rows)
        done = status in (AIBatchRequestStatus.PROCESSED, AIBatchRequestStatus.FAILED)
        self.rows.append(
            [
                seeded_id(_Table.BATCH, number),
                seeded_id(_Table.COMPANY, company),
                MODEL,
                f"{number:032x}",
                f"batch_seed_{number}",
                f"file-in-{number}",
                f"file-out-{number}" if done else None,
                status.value,
                0,
                0,
                0,
                0,
                0,
                0.0,
                created,
                None,
                created,
                created,
                created + timedelta(hours=1) if done else None,
                created + timedelta(hours=1) if done else None,
            ]
        )
        return number

    def finished_batch(self, company: int, created: datetime) -> uuid.UUID:
        number, used = self.finished.get(company, (-1, BATCH_SIZE))
        if used >= BATCH_SIZE:
            status = (
                AIBatchRequestStatus.FAILED if len(self.rows) % 97 == 0 else AIBatchRequestStatus.PROCESSED
            )
            number, used = self._new(company, status, created), 0
        self.finished[company] = (number, used + 1)
        self.rows[number][8] += 1
        self.rows[number][9] += 1
        return seeded_id(_Table.BATCH, number)

    def open_batch(self, company: int, created: datetime) -> uuid.UUID:
        if company not in self.open:
            statuses = (AIBatchRequestStatus.IN_PROGRESS, AIBatchRequestStatus.VALIDATING,
                        AIBatchRequestStatus.FINALIZING, AIBatchRequestStatus.COMPLETED)  # fmt: skip
            self.open[company] = self._new(company, statuses[company % len(statuses)], created)
        number = self.open[company]
        self.rows[number][8] += 1
        return seeded_id(_Table.BATCH, number)


def _stage(
    session_id: uuid.UUID,
    number: int,
    stage: ProcessingStage,
    status: ProcessingStatus,
    at: datetime,
    **extra: Any,
) -> tuple[Any, ...]:
    done = status in (ProcessingStatus.COMPLETED, ProcessingStatus.FAILED, ProcessingStatus.SKIPPED)
    return (
        seeded_id(_Table.STAGE, number),
        session_id,
        stage.value,
        status.value,
        extra.get("started_at", at if done else None),
        at if done else None,
        extra.get("error"),
        extra.get("retry_count", 0),
        extra.get("metadata"),
        extra.get("lease"),
        extra.get("leased_by"),
        extra.get("attempts", 1 if done else 0),
        extra.get("next_attempt_at"),
        at,
        at,
    )


def _ai_stage(state: SessionState, plan: SeedPlan, at: datetime) -> tuple[ProcessingStatus, dict[str, Any]]:
    if state is SessionState.ANALYSED:
        return ProcessingStatus.COMPLETED, {}
    if state is SessionState.ANALYSING:
        return ProcessingStatus.IN_PROGRESS, {
            "started_at": plan.now, "lease": plan.now + timedelta(minutes=5), "leased_by": "seed-worker",
            "attempts": 1,
        }  # fmt: skip
    if state in _AI_FAILED:
        due = {SessionState.AI_FAILED_DUE: plan.now - timedelta(minutes=1),
               SessionState.AI_FAILED_NOT_DUE: plan.now + timedelta(hours=1)}.get(state)  # fmt: skip
        return ProcessingStatus.FAILED, {
            "error": "model answer did not match the schema", "retry_count": 3, "attempts": 3,
            "next_attempt_at": due,
        }  # fmt: skip
    if state is SessionState.TRANSCRIPT_FAILED:
        return ProcessingStatus.SKIPPED, {"error": "transcript fetch failed: HTTP 503"}
    # Waiting for AI, for a batch, or in one: PENDING, the batch owning it without a lease.
    return ProcessingStatus.PENDING, {"attempts": int(state is not SessionState.WAITING_FOR_AI)}


@dataclass
class _Writer:
    plan: SeedPlan
    copy: _Copy
    batches: _Batches
    counts: dict[str, int]
    message_number: int = 0
    stage_number: int = 0
    request_number: int = 0
    link_number: int = 0

    def sessions(self) -> None:
        """Imports, sessions, messages, stage rows, AI requests and question links, in one pass per table."""
        plan = self.plan
        states = [session_state(index, plan.sessions) for index in range(plan.sessions)]
        derived = [index for index, state in enumerate(states) if state not in _NOT_DERIVED]
        self.counts["session_import"] = self.copy(
            "session_import", _IMPORT_COLUMNS, (_import_row(plan, i, s) for i, s in enumerate(states))
        )
        self.counts["session"] = self.copy(
            "session", _SESSION_COLUMNS, (self._session(i, states[i]) for i in derived)
        )
        self.counts["message"] = self.copy("message", _MESSAGE_COLUMNS, self._messages(derived, states))
        self.counts["session_processing_status"] = self.copy(
            "session_processing_status", _STAGE_COLUMNS, self._stages(derived, states)
        )
        requests = self._request_plan(derived, states)
        self.counts["ai_batch_request"] = self.copy("ai_batch_request", _BATCH_COLUMNS, self.batches.rows)
        self.counts["ai_processing_request"] = self.copy(
            "ai_processing_request",
            _REQUEST_COLUMNS,
            (self._request(index, states[index], batch, failed=failed) for index, failed, batch in requests),
        )
        self.counts["question"] = self.copy(
            "question",
            ("id", "content", "created_at"),
            (
                (seeded_id(_Table.QUESTION, n), f"Seeded question number {n}?", plan.now)
                for n in range(QUESTIONS)
            ),
        )
        self.counts["session_question"] = self.copy(
            "session_question",
            ("id", "session_id", "question_id", "order", "created_at"),
            self._links(derived, states),
        )

    def _session(self, index: int, state: SessionState) -> tuple[Any, ...]:
        started = self.plan.started(index)
        analysed = state is SessionState.ANALYSED
        draw = _spread(index)
        return (
            seeded_id(_Table.SESSION, index),
            seeded_id(_Table.COMPANY, self.plan.company(index)),
            seeded_id(_Table.IMPORT, index),
            started,
            started + timedelta(minutes=4),
            "NL",
            "nl",
            MESSAGES_MIN + draw % MESSAGES_SPREAD,
            _SENTIMENTS[draw % 3] if analysed else None,
            draw % 11 == 0 if analysed else None,
            draw % 17 == 0 if analysed else None,
            _CATEGORIES[draw % len(_CATEGORIES)] if analysed else None,
            "The employee asked about their schedule and got an answer." if analysed else None,
            "Hoi, ik heb een vraag over mijn rooster.",
            started + timedelta(minutes=6),
            started + timedelta(minutes=7),
        )

    def _messages(self, derived: list[int], states: list[SessionState]) -> Iterator[tuple[Any, ...]]:
        for index in derived:
            if states[index] is SessionState.TRANSCRIPT_FAILED:
                continue
            session_id, started = seeded_id(_Table.SESSION, index), self.plan.started(index)
            for order in range(MESSAGES_MIN + _spread(index) % MESSAGES_SPREAD):
                user = order % 2 == 0
                yield (
                    seeded_id(_Table.MESSAGE, self.message_number),
                    session_id,
                    started + timedelta(seconds=20 * order),
                    "User" if user else "Assistant",
                    "Wanneer begint mijn dienst morgen?" if user else "Je dienst begint morgen om 08:00.",
                    order,
                    started + timedelta(minutes=6),
                )
                self.message_number += 1

    def _stages(self, derived: list[int], states: list[SessionState]) -> Iterator[tuple[Any, ...]]:
        for index in derived:
            state, session_id = states[index], seeded_id(_Table.SESSION, index)
            at = self.plan.started(index) + timedelta(minutes=6)
            fetch_failed = state is SessionState.TRANSCRIPT_FAILED
            rows: list[tuple[ProcessingStage, ProcessingStatus, dict[str, Any]]] = [
                (ProcessingStage.CSV_IMPORT, ProcessingStatus.COMPLETED,
                 {"metadata": Jsonb({"warnings": []})}),
                (ProcessingStage.TRANSCRIPT_FETCH,
                 ProcessingStatus.FAILED if fetch_failed else ProcessingStatus.COMPLETED,
                 {"error": "HTTP 503", "retry_count": 1} if fetch_failed else {}),
                (ProcessingStage.SESSION_CREATION,
                 ProcessingStatus.SKIPPED if fetch_failed else ProcessingStatus.COMPLETED, {}),
            ]  # fmt: skip
            ai_status, ai_extra = _ai_stage(state, self.plan, at)
            rows.append((ProcessingStage.AI_ANALYSIS, ai_status, ai_extra))
            questions = (
                ai_status if ai_status is not ProcessingStatus.IN_PROGRESS else ProcessingStatus.PENDING
            )
            rows.append((ProcessingStage.QUESTION_EXTRACTION, questions, {"error": ai_extra.get("error")}))
            for stage, status, extra in rows:
                yield _stage(session_id, self.stage_number, stage, status, at, **extra)
                self.stage_number += 1

    def _request(
        self, index: int, state: SessionState, batch: uuid.UUID | None, *, failed: bool = False
    ) -> tuple[Any, ...]:
        at = self.plan.started(index) + timedelta(minutes=7)
        complete = state is SessionState.ANALYSED
        status = {
            SessionState.ANALYSED: AIRequestStatus.PROCESSING_COMPLETE,
            SessionState.PENDING_BATCH: AIRequestStatus.PENDING_BATCHING,
            SessionState.IN_BATCH: AIRequestStatus.BATCHING_IN_PROGRESS,
        }.get(state, AIRequestStatus.PROCESSING_FAILED)
        if failed:
            status, complete = AIRequestStatus.PROCESSING_FAILED, False
        number = self.request_number
        self.request_number += 1
        return (
            seeded_id(_Table.REQUEST, number),
            seeded_id(_Table.SESSION, index),
            MODEL,
            900 if complete else 0,
            120 if complete else 0,
            1020 if complete else 0,
            1.5e-7,
            6e-7,
            0.0002 if complete else 0.0,
            True,
            "session_analysis",
            complete,
            None
            if complete or status is not AIRequestStatus.PROCESSING_FAILED
            else "line failed: server_error",
            1,
            at,
            at + timedelta(hours=1)
            if status in (AIRequestStatus.PROCESSING_COMPLETE, AIRequestStatus.PROCESSING_FAILED)
            else None,
            status.value,
            batch,
        )

    def _request_plan(
        self, derived: list[int], states: list[SessionState]
    ) -> list[tuple[int, bool, uuid.UUID | None]]:
        """Each request as (session index, failed line, batch): batches assigned here go in first."""
        planned: list[tuple[int, bool, uuid.UUID | None]] = []
        for index in derived:
            state = states[index]
            company, at = self.plan.company(index), self.plan.started(index)
            if state is SessionState.ANALYSED:
                if _spread(index) % 50 == 0:
                    # A line that failed in an earlier batch: the dead request stays beside the good one.
                    planned.append((index, True, self.batches.finished_batch(company, at)))
                planned.append((index, False, self.batches.finished_batch(company, at)))
            elif state is SessionState.PENDING_BATCH:
                planned.append((index, False, None))
            elif state is SessionState.IN_BATCH:
                planned.append((index, False, self.batches.open_batch(company, at)))
            elif state in _AI_FAILED:
                planned.append((index, False, self.batches.finished_batch(company, at)))
        return planned

    def _links(self, derived: list[int], states: list[SessionState]) -> Iterator[tuple[Any, ...]]:
        for index in derived:
            if states[index] is not SessionState.ANALYSED:
                continue
            draw = _spread(index)
            for order in range(1 + draw % 2):
                yield (
                    seeded_id(_Table.SESSION_QUESTION, self.link_number),
                    seeded_id(_Table.SESSION, index),
                    seeded_id(_Table.QUESTION, (index + order * 7) % QUESTIONS),
                    order,
                    self.plan.now,
                )
                self.link_number += 1


def _fetches(plan: SeedPlan, errors: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """Every company's fetch history, every ``FETCH_EVERY`` over ``fetch_history``; fills ``errors``."""
    per_company = max(1, int(plan.fetch_history / FETCH_EVERY))
    number = 0
    for company in range(plan.companies):
        for step in range(per_company):
            started = plan.now - FETCH_EVERY * (per_company - step) + timedelta(seconds=company % 600)
            failed = number % 41 == 0
            invalid = 3 if number % FETCH_WITH_ERRORS_EVERY == 0 and not failed else 0
            fetch_id = seeded_id(_Table.FETCH, number)
            for line in range(invalid):
                errors.append(
                    (
                        seeded_id(_Table.ROW_ERROR, len(errors)),
                        fetch_id,
                        seeded_id(_Table.COMPANY, company),
                        line + 2,
                        "start_time: not a date",
                        "s-x;31.02.2026",
                        started,
                    )
                )
            outcome = CsvFetchOutcome.FAILED if failed else (
                CsvFetchOutcome.IMPORTED if invalid or step % 6 == 0 else CsvFetchOutcome.UNCHANGED
            )  # fmt: skip
            yield (
                fetch_id, seeded_id(_Table.COMPANY, company), outcome.value, started,
                started + timedelta(seconds=2), None if failed else 200, 0 if failed else 52_000,
                0 if failed else 120, 0, 0, 0, invalid, None if failed else f"{number:064x}",
                "HTTP 503 from the company's server" if failed else None,
            )  # fmt: skip
            number += 1


def _scheduler_history(plan: SeedPlan) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    ticks: list[tuple[Any, ...]] = []
    runs: list[tuple[Any, ...]] = []
    for job, every in SCHEDULER_JOBS:
        count = int(plan.scheduler_history / every)
        for step in range(count):
            at = plan.now - every * (count - step)
            tick_id = seeded_id(_Table.TICK, len(ticks))
            ticks.append(
                (tick_id, job, at, TickOutcome.ENQUEUED.value, "seed-scheduler", f"m-{len(ticks)}", at)
            )
            failed = len(runs) % 53 == 0
            runs.append(
                (
                    seeded_id(_Table.RUN, len(runs)),
                    job,
                    tick_id,
                    (SchedulerRunStatus.FAILED if failed else SchedulerRunStatus.SUCCEEDED).value,
                    "seed-worker",
                    at + timedelta(seconds=1),
                    at + timedelta(seconds=3),
                    0 if failed else 50,
                    "database unavailable" if failed else None,
                )
            )
    return ticks, runs


#: Tables whose indexes (those not behind a constraint) are dropped for the load and built after it: one sort
#: per index instead of millions of insertions at random places in it.
_BULK_TABLES = (
    "session_import", "session", "message", "session_processing_status", "ai_processing_request",
    "session_question", "csv_fetch", "csv_row_error",
)  # fmt: skip


@contextmanager
def _indexes_built_after(connection: Connection) -> Iterator[None]:
    indexes = connection.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes i WHERE schemaname = current_schema() "
            "AND tablename = ANY(:tables) "
            "AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conname = i.indexname)"
        ),
        {"tables": list(_BULK_TABLES)},
    ).all()
    for name, _ in indexes:
        connection.execute(text(f'DROP INDEX "{name}"'))
    yield
    for _, definition in indexes:
        connection.execute(text(definition))


def _copier(connection: Connection, progress: Callable[[str, int], None] | None) -> _Copy:
    driver: Any = connection.connection.driver_connection

    def copy(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        quoted = ", ".join(f'"{column}"' for column in columns)
        written = 0
        with driver.cursor() as cursor, cursor.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as stream:
            for row in rows:
                stream.write_row(row)
                written += 1
        if progress is not None:
            progress(table, written)
        return written

    return copy


def _write(copy: _Copy, plan: SeedPlan) -> dict[str, int]:
    counts: dict[str, int] = {}
    counts["company"] = copy(
        "company",
        ("id", "name", "status", "csv_url", "max_users", "timezone", "created_at", "updated_at"),
        _companies(plan),
    )
    _Writer(plan, copy, _Batches.empty(plan), counts).sessions()
    errors: list[tuple[Any, ...]] = []
    counts["csv_fetch"] = copy(
        "csv_fetch",
        ("id", "company_id", "outcome", "started_at", "finished_at", "http_status", "bytes_read",
         "rows_total", "rows_new", "rows_changed", "rows_duplicate", "rows_invalid", "content_hash", "error"),
        _fetches(plan, errors),
    )  # fmt: skip
    counts["csv_row_error"] = copy(
        "csv_row_error",
        ("id", "fetch_id", "company_id", "line_number", "reason", "raw_excerpt", "created_at"),
        errors,
    )
    ticks, runs = _scheduler_history(plan)
    counts["scheduler_tick"] = copy(
        "scheduler_tick",
        ("id", "job", "tick_at", "outcome", "instance_id", "message_id", "recorded_at"),
        ticks,
    )
    counts["scheduler_run"] = copy(
        "scheduler_run",
        ("id", "job", "tick_id", "status", "instance_id", "started_at", "finished_at", "items_processed",
         "error"),
        runs,
    )  # fmt: skip
    return counts


def seed_database(
    engine: Engine, plan: SeedPlan, *, progress: Callable[[str, int], None] | None = None
) -> SeedReport:
    """Write ``plan`` into the (migrated, empty of companies) database of ``engine``; return the row counts.

    Everything goes in one transaction: a seed that fails leaves the database as it was.
    """
    with engine.begin() as connection:
        if connection.execute(text("SELECT EXISTS (SELECT FROM company)")).scalar():
            raise ValueError("the database already holds companies: seed an empty one")
        with _indexes_built_after(connection):
            counts = _write(_copier(connection, progress), plan)
    # Fresh statistics, so that the planner sees the seeded tables as they are (autovacuum would, later).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    return SeedReport(counts)


def default_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
