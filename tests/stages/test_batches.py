"""The OpenAI Batch path: write-ahead submission that never pays twice, polling, ingesting, recovering.

Real PostgreSQL and the OpenAI emulator over HTTP; the emulator's ledger shows what was billed.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import httpx2
import openai
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import sessionmaker

from pipeline.analysis import SessionAnalysis
from pipeline.analysis.openai_calls import openai_client
from pipeline.db.enums import (
    AIBatchRequestStatus,
    AIRequestStatus,
    ProcessingStage,
    ProcessingStatus,
    SentimentCategory,
    SessionCategory,
)
from pipeline.db.models import (
    AIBatchRequest,
    AIModel,
    AIProcessingRequest,
    ChatSession,
    CompanyAIModel,
    Question,
    SessionProcessingStatus,
    SessionQuestion,
)
from pipeline.db.types import utcnow
from pipeline.devtools.openai_emulator import BatchOutcome, Knobs, OpenAIEmulator
from pipeline.settings import Settings
from pipeline.stages import batch_ingest, batch_submit
from pipeline.stages.analysis_results import Applied, answer_of, apply_analyses, complete_analyses
from pipeline.stages.batch_check import check_batches
from pipeline.stages.batch_enqueue import enqueue_for_batch
from pipeline.stages.batch_ingest import ingest_batch
from pipeline.stages.batch_submit import file_name, plan_batches, submit_batch
from pipeline.stages.stage_status import StageChange, apply_stage_changes
from tests.factories import make_analysable_session, make_company

#: OPENAI_MAX_PROMPT_TOKENS of the tests: every test transcript fits.
PROMPT_TOKENS = 16_000

TURNS = [("user", "When is my schedule for next week online?"), ("assistant", "On Friday, in the app.")]
INSTANT = {"validating_seconds": 0.0, "in_progress_seconds": 0.0, "finalizing_seconds": 0.0}


@pytest.fixture(scope="module")
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as running:
        yield running


@pytest.fixture
def batch_settings(pg_settings: Settings, emulator: OpenAIEmulator) -> Settings:
    emulator.reset()
    emulator.knobs = Knobs(**INSTANT)
    return pg_settings.model_copy(
        update={
            "openai_base_url": emulator.url,
            "batch_min_requests": 1,
            "batch_max_requests": 1000,
            "batch_max_attempts": 2,
        }
    )


@pytest.fixture
def client(batch_settings: Settings) -> Iterator[openai.OpenAI]:
    with openai_client(batch_settings) as sdk:
        yield sdk


def _queued_sessions(
    engine: Engine, settings: Settings, count: int, company_name: str = "Acme"
) -> list[uuid.UUID]:
    with sessionmaker(engine).begin() as db:
        company = make_company(db, name=company_name)
        ids = [make_analysable_session(db, company, TURNS).id for _ in range(count)]
    assert enqueue_for_batch(engine, settings, ids) == count
    return ids


def _run_batches(engine: Engine, settings: Settings, client: openai.OpenAI, rounds: int = 4) -> None:
    """Plan, submit and check until nothing is left to do (each round is one submit tick and one check)."""
    for _ in range(rounds):
        for batch_id in plan_batches(engine, settings):
            submit_batch(engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)
        check_batches(engine, settings, client)


def _ai_statuses(engine: Engine) -> dict[ProcessingStatus, int]:
    with sessionmaker(engine)() as db:
        rows = db.execute(
            select(SessionProcessingStatus.status, func.count())
            .where(SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS)
            .group_by(SessionProcessingStatus.status)
        ).all()
    return {status: count for status, count in rows}


def _batches(engine: Engine) -> list[AIBatchRequest]:
    with sessionmaker(engine)() as db:
        return list(db.scalars(select(AIBatchRequest).order_by(AIBatchRequest.created_at)))


def _billed_sessions(emulator: OpenAIEmulator) -> list[str]:
    return sorted(entry.session_id or "" for entry in emulator.ledger())


@pytest.mark.postgres
def test_the_whole_lifecycle_analyses_every_session_once_at_half_price(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given 25 sessions queued for the Batch API, at most 10 per batch
    settings = batch_settings.model_copy(update={"batch_max_requests": 10})
    session_ids = _queued_sessions(pg_engine, settings, 25)

    # When one submit tick runs, then the check tick
    planned = plan_batches(pg_engine, settings)
    for batch_id in planned:
        assert (
            submit_batch(pg_engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)
            is AIBatchRequestStatus.VALIDATING
        )
    check_batches(pg_engine, settings, client)

    # Then the backlog became three batches in that one tick, all processed, with their counts and cost
    assert len(planned) == 3
    batches = _batches(pg_engine)
    assert [batch.status for batch in batches] == [AIBatchRequestStatus.PROCESSED] * 3
    assert sorted(batch.request_count for batch in batches) == [5, 10, 10]
    assert sum(batch.completed_count for batch in batches) == 25 and sum(b.failed_count for b in batches) == 0
    # And every session is analysed, and each was billed exactly once
    assert _ai_statuses(pg_engine) == {ProcessingStatus.COMPLETED: 25}
    assert _billed_sessions(emulator) == sorted(map(str, session_ids))
    # And the cost is gpt-4o's price with the Batch discount
    with sessionmaker(pg_engine)() as db:
        requests = db.scalars(select(AIProcessingRequest)).all()
        sessions = db.scalars(select(ChatSession)).all()
    assert all(r.success and r.processing_status is AIRequestStatus.PROCESSING_COMPLETE for r in requests)
    request = requests[0]
    assert request.total_cost_eur == pytest.approx(
        (request.prompt_tokens * 0.0000025 + request.completion_tokens * 0.00001) * 0.5 * settings.eur_per_usd
    )
    assert all(session.category is not None and session.summary for session in sessions)
    # And the check tick published the batch metrics
    assert REGISTRY.get_sample_value("livedash_batches", {"status": "PROCESSED"}) == 3
    assert REGISTRY.get_sample_value("livedash_ai_requests", {"status": "PROCESSING_COMPLETE"}) == 25
    assert REGISTRY.get_sample_value("livedash_oldest_open_batch_age_seconds") == 0
    assert (
        REGISTRY.get_sample_value(
            "livedash_openai_tokens_total", {"model": "gpt-4o", "mode": "batch", "kind": "prompt"}
        )
        or 0
    ) > 0


@pytest.mark.postgres
def test_a_session_is_never_queued_twice(pg_engine: Engine, batch_settings: Settings) -> None:
    # Given queued sessions
    session_ids = _queued_sessions(pg_engine, batch_settings, 3)

    # When the same chunk is delivered again
    again = enqueue_for_batch(pg_engine, batch_settings, session_ids)

    # Then nothing more is queued: one open request per session
    assert again == 0
    with sessionmaker(pg_engine)() as db:
        assert db.scalar(select(func.count()).select_from(AIProcessingRequest)) == 3


@pytest.mark.postgres
def test_companies_and_models_get_batches_of_their_own(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI
) -> None:
    # Given two companies, the second analysing with gpt-4o-mini
    _queued_sessions(pg_engine, batch_settings, 2, "First")
    with sessionmaker(pg_engine).begin() as db:
        second = make_company(db, name="Second")
        mini = db.scalars(select(AIModel).where(AIModel.name == "gpt-4o-mini")).one()
        db.add(CompanyAIModel(company_id=second.id, ai_model_id=mini.id, is_default=True))
        ids = [make_analysable_session(db, second, TURNS).id for _ in range(2)]
    enqueue_for_batch(pg_engine, batch_settings, ids)

    # When the batches are planned
    planned = plan_batches(pg_engine, batch_settings)

    # Then there is one per (company, model), each with one model in it
    assert len(planned) == 2
    assert sorted(batch.model for batch in _batches(pg_engine)) == ["gpt-4o", "gpt-4o-mini"]


@pytest.mark.postgres
def test_nothing_is_submitted_before_enough_requests_wait_or_the_oldest_waited_long_enough(
    pg_engine: Engine, batch_settings: Settings
) -> None:
    # Given 3 waiting requests where a batch wants 10, or 30 minutes of waiting
    settings = batch_settings.model_copy(update={"batch_min_requests": 10, "batch_max_wait": 1800})
    _queued_sessions(pg_engine, settings, 3)

    # When the submit tick runs now, and again 31 minutes later
    now_planned = plan_batches(pg_engine, settings)
    later_planned = plan_batches(pg_engine, settings, now=utcnow() + timedelta(minutes=31))

    # Then it waits at first, then sends them
    assert now_planned == []
    assert len(later_planned) == 1


class Crash(Exception):
    """Stands for a worker dying at one point of the submission."""


@pytest.mark.postgres
@pytest.mark.parametrize("crash_point", ["before_upload", "after_upload", "after_create"])
def test_a_submission_that_crashes_at_any_step_creates_one_file_and_one_batch(
    pg_engine: Engine,
    batch_settings: Settings,
    client: openai.OpenAI,
    emulator: OpenAIEmulator,
    monkeypatch: pytest.MonkeyPatch,
    crash_point: str,
) -> None:
    # Given a planned batch, and a worker that dies at one step of its submission
    session_ids = _queued_sessions(pg_engine, batch_settings, 4)
    [batch_id] = plan_batches(pg_engine, batch_settings)
    # The step that never happens: writing the file, recording the uploaded file, recording the created batch.
    step = {"before_upload": "_write_jsonl", "after_upload": "_record_file", "after_create": "_record_remote"}

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise Crash()

    with monkeypatch.context() as patched:
        patched.setattr(batch_submit, step[crash_point], crash)
        with pytest.raises(Crash):
            submit_batch(pg_engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)

    # When its lease has run out and the check tick submits it again, then polls it
    with sessionmaker(pg_engine).begin() as db:
        db.execute(update(AIBatchRequest).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    check_batches(pg_engine, batch_settings, client)
    check_batches(pg_engine, batch_settings, client)

    # Then OpenAI holds one input file and one batch for it, and every session was billed once
    [batch] = _batches(pg_engine)
    files = [stored for stored in client.files.list(purpose="batch") if stored.filename == file_name(batch)]
    remote = [
        item
        for item in client.batches.list()
        if (item.metadata or {}).get("idempotency_key") == batch.idempotency_key
    ]
    assert len(files) == 1 and len(remote) == 1
    assert batch.status is AIBatchRequestStatus.PROCESSED
    assert _billed_sessions(emulator) == sorted(map(str, session_ids))


@pytest.mark.postgres
def test_a_submission_that_fails_hands_its_lease_back_so_the_retry_submits_at_once(
    pg_engine: Engine,
    batch_settings: Settings,
    client: openai.OpenAI,
    emulator: OpenAIEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a planned batch whose first submission fails at OpenAI (an upload error, say)
    session_ids = _queued_sessions(pg_engine, batch_settings, 3)
    [batch_id] = plan_batches(pg_engine, batch_settings)

    def upload_fails(*args: Any, **kwargs: Any) -> Any:
        raise Crash()

    with monkeypatch.context() as patched:
        patched.setattr(client.files, "create", upload_fails)
        with pytest.raises(Crash):
            submit_batch(pg_engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)

    # When the actor's retry runs moments later, long before the upload lease would have run out
    outcome = submit_batch(pg_engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)
    check_batches(pg_engine, batch_settings, client)

    # Then the retry submitted it (it did not stand back as if another worker held it), and each session
    # was billed once
    assert outcome is AIBatchRequestStatus.VALIDATING
    [batch] = _batches(pg_engine)
    assert batch.status is AIBatchRequestStatus.PROCESSED
    assert _billed_sessions(emulator) == sorted(map(str, session_ids))


@pytest.mark.postgres
def test_two_workers_submitting_the_same_batch_create_it_once(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given a planned batch whose submit message was delivered twice, to two workers at once
    _queued_sessions(pg_engine, batch_settings, 5)
    [batch_id] = plan_batches(pg_engine, batch_settings)
    outcomes: list[object] = []
    workers = [
        threading.Thread(
            target=lambda: outcomes.append(
                submit_batch(pg_engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)
            )
        )
        for _ in range(2)
    ]

    # When both run
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    # Then one submitted it and the other stood back: OpenAI holds one file and one batch
    assert sorted(map(str, outcomes)) == ["None", "VALIDATING"]
    [batch] = _batches(pg_engine)
    assert len([f for f in client.files.list(purpose="batch") if f.filename == file_name(batch)]) == 1
    assert len(list(client.batches.list())) == 1


@pytest.mark.postgres
def test_a_batch_that_fails_at_openai_releases_its_requests_with_the_reason(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given a batch that OpenAI fails at validation
    _queued_sessions(pg_engine, batch_settings, 3)
    emulator.knobs.batch_outcome = "failed"
    for batch_id in plan_batches(pg_engine, batch_settings):
        submit_batch(pg_engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)

    # When it is checked
    check_batches(pg_engine, batch_settings, client)

    # Then the batch is FAILED with OpenAI's reason and its requests wait for the next batch (attempt 2)
    [batch] = _batches(pg_engine)
    assert batch.status is AIBatchRequestStatus.FAILED and "token_limit_exceeded" in (
        batch.error_message or ""
    )
    with sessionmaker(pg_engine)() as db:
        pending = db.scalars(
            select(AIProcessingRequest).where(
                AIProcessingRequest.processing_status == AIRequestStatus.PENDING_BATCHING
            )
        ).all()
    assert len(pending) == 3 and all(request.attempts == 2 for request in pending)

    # When the next batch fails too (2 attempts allowed)
    _run_batches(pg_engine, batch_settings, client, rounds=1)

    # Then the sessions' analysis is FAILED for good, saying why, and nothing was ever billed
    assert _ai_statuses(pg_engine) == {ProcessingStatus.FAILED: 3}
    with sessionmaker(pg_engine)() as db:
        reason = db.scalars(
            select(SessionProcessingStatus.error_message).where(
                SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS
            )
        ).first()
    assert reason and "gave up after 2 batch attempts" in reason
    assert emulator.ledger() == []


@pytest.mark.postgres
@pytest.mark.parametrize("outcome", ["expired", "cancelled"])
def test_a_batch_ending_early_keeps_its_partial_results_and_requeues_the_rest(
    pg_engine: Engine,
    batch_settings: Settings,
    client: openai.OpenAI,
    emulator: OpenAIEmulator,
    outcome: BatchOutcome,
) -> None:
    # Given a batch of 10 that expires (or is cancelled) with half its lines answered
    session_ids = _queued_sessions(pg_engine, batch_settings, 10)
    emulator.knobs.batch_outcome = outcome
    emulator.knobs.partial_fraction = 0.5
    emulator.knobs.cancelling_seconds = 0.0

    # When it is checked, then the rest goes into a new batch that completes
    _run_batches(pg_engine, batch_settings, client, rounds=1)
    first_round = _ai_statuses(pg_engine)
    emulator.knobs.batch_outcome = "completed"
    _run_batches(pg_engine, batch_settings, client, rounds=1)

    # Then the answered half was applied at once, the rest afterwards, and no session was billed twice
    assert first_round == {ProcessingStatus.COMPLETED: 5, ProcessingStatus.IN_PROGRESS: 5}
    assert _ai_statuses(pg_engine) == {ProcessingStatus.COMPLETED: 10}
    assert _billed_sessions(emulator) == sorted(map(str, session_ids))
    first = _batches(pg_engine)[0]
    assert (first.completed_count, first.failed_count) == (5, 5)
    assert f"batch {outcome}" in (first.error_message or "")


@pytest.mark.postgres
def test_failed_lines_record_their_message_and_are_retried(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given three attempts per request, and a batch in which half the lines come back in the error file
    settings = batch_settings.model_copy(update={"batch_max_attempts": 3})
    session_ids = _queued_sessions(pg_engine, settings, 6)
    emulator.knobs.batch_error_fraction = 0.5

    # When it is processed
    _run_batches(pg_engine, settings, client, rounds=1)

    # Then each error line's request carries the API's real message, and the others are applied
    assert _failure_messages(pg_engine) == ["HTTP 500: " + _SERVER_ERROR] * 3
    assert _ai_statuses(pg_engine) == {ProcessingStatus.COMPLETED: 3, ProcessingStatus.IN_PROGRESS: 3}

    # When the retry batch answers one session with an invalid analysis
    emulator.knobs.batch_error_fraction = 0.0
    retried = [session_id for session_id in session_ids if _analysed(pg_engine, session_id) is False]
    emulator.knobs.session_faults = {str(retried[0]): "schema_violation"}
    _run_batches(pg_engine, settings, client, rounds=1)

    # Then that answer's request says why it was refused (it was paid for, so it keeps its cost)
    invalid = [m for m in _failure_messages(pg_engine) if m.startswith("invalid answer:")]
    assert invalid == [
        "invalid answer: sentiment: 'MIXED' is not one of POSITIVE, NEUTRAL, NEGATIVE; summary: missing"
    ]

    # When the last attempt answers well
    emulator.knobs.session_faults = {}
    _run_batches(pg_engine, settings, client, rounds=1)

    # Then every session is analysed
    assert _ai_statuses(pg_engine) == {ProcessingStatus.COMPLETED: 6}


_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


def _failure_messages(engine: Engine) -> list[str]:
    with sessionmaker(engine)() as db:
        return [
            message or ""
            for message in db.scalars(
                select(AIProcessingRequest.error_message)
                .where(AIProcessingRequest.processing_status == AIRequestStatus.PROCESSING_FAILED)
                .order_by(AIProcessingRequest.completed_at, AIProcessingRequest.error_message)
            )
        ]


def _analysed(engine: Engine, session_id: uuid.UUID) -> bool:
    with sessionmaker(engine)() as db:
        status = db.scalar(
            select(SessionProcessingStatus.status).where(
                SessionProcessingStatus.session_id == session_id,
                SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
            )
        )
    return status is ProcessingStatus.COMPLETED


@pytest.mark.postgres
def test_ingesting_the_same_batch_twice_changes_nothing(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI
) -> None:
    # Given a processed batch
    _queued_sessions(pg_engine, batch_settings, 4)
    _run_batches(pg_engine, batch_settings, client, rounds=1)
    [batch] = _batches(pg_engine)
    with sessionmaker(pg_engine)() as db:
        before = db.execute(select(AIProcessingRequest.id, AIProcessingRequest.total_cost_eur)).all()

    # When its files are ingested again
    again = ingest_batch(
        pg_engine,
        batch_settings,
        client,
        batch.id,
        remote_status="completed",
        output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id,
    )

    # Then nothing is applied again
    assert (again.completed, again.failed, again.missing) == (0, 0, 0)
    with sessionmaker(pg_engine)() as db:
        assert db.execute(select(AIProcessingRequest.id, AIProcessingRequest.total_cost_eur)).all() == before


@pytest.mark.postgres
def test_two_check_ticks_at_once_ingest_a_batch_once(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI
) -> None:
    # Given a submitted batch that OpenAI has finished, and two check ticks running at the same moment
    _queued_sessions(pg_engine, batch_settings, 8)
    for batch_id in plan_batches(pg_engine, batch_settings):
        submit_batch(pg_engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)
    ticks = [
        threading.Thread(target=check_batches, args=(pg_engine, batch_settings, client)) for _ in range(2)
    ]

    # When both run
    for tick in ticks:
        tick.start()
    for tick in ticks:
        tick.join(timeout=60)

    # Then the batch was ingested once: one answered request per session, counted once
    [batch] = _batches(pg_engine)
    assert (batch.status, batch.completed_count, batch.failed_count) == (AIBatchRequestStatus.PROCESSED, 8, 0)
    with sessionmaker(pg_engine)() as db:
        statuses = db.execute(
            select(AIProcessingRequest.processing_status, func.count()).group_by(
                AIProcessingRequest.processing_status
            )
        ).all()
    assert statuses == [(AIRequestStatus.PROCESSING_COMPLETE, 8)]


@pytest.mark.postgres
def test_a_polling_error_never_fails_a_batch_locally(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI
) -> None:
    # Given a submitted batch, and an API that cannot be reached when the check runs
    _queued_sessions(pg_engine, batch_settings, 2)
    for batch_id in plan_batches(pg_engine, batch_settings):
        submit_batch(pg_engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)
    unreachable = batch_settings.model_copy(update={"openai_base_url": "http://127.0.0.1:1/v1"})

    # When the check tick runs
    with openai_client(unreachable) as dead:
        result = check_batches(pg_engine, unreachable, dead)

    # Then the batch is left as it was, for the next tick
    assert result.poll_errors == 1
    [batch] = _batches(pg_engine)
    assert batch.status is AIBatchRequestStatus.VALIDATING


class _FirstOutputReadFails:
    """Stands for the streaming Files API of a client whose first read of a file fails at OpenAI."""

    def __init__(self, files: Any) -> None:
        self.files = files
        self.failed: list[str] = []

    def content(self, file_id: str) -> Any:
        if not self.failed:
            self.failed.append(file_id)
            raise openai.APIConnectionError(
                request=httpx2.Request("GET", f"http://127.0.0.1/files/{file_id}")
            )
        return self.files.content(file_id)


@pytest.mark.postgres
def test_a_batch_whose_output_cannot_be_read_hands_its_lease_back_and_the_next_check_ingests_it(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two batches finished at OpenAI, and an outage while the first one's output is read
    for company in ("Acme", "Globex"):
        _queued_sessions(pg_engine, batch_settings, 3, company_name=company)
        for batch_id in plan_batches(pg_engine, batch_settings):
            submit_batch(pg_engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)
    outage = _FirstOutputReadFails(client.files.with_streaming_response)
    with monkeypatch.context() as patched:
        patched.setattr(client.files, "with_streaming_response", outage)

        # When the check tick runs during the outage, and the next one right after it
        during = check_batches(pg_engine, batch_settings, client)
    after = check_batches(pg_engine, batch_settings, client)

    # Then the tick went on to ingest the other batch, and the next one ingested the first at once instead of
    # waiting for the lease of the failed ingestion to run out
    assert outage.failed and (during.ingest_errors, during.ingested) == (1, 1)
    assert (after.ingest_errors, after.ingested) == (0, 1)
    assert [batch.status for batch in _batches(pg_engine)] == [AIBatchRequestStatus.PROCESSED] * 2
    assert _ai_statuses(pg_engine) == {ProcessingStatus.COMPLETED: 6}


@pytest.mark.postgres
def test_a_batch_open_too_long_is_cancelled_and_its_requests_come_back(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given a batch stuck in progress for longer than BATCH_TIMEOUT_HOURS
    _queued_sessions(pg_engine, batch_settings, 4)
    emulator.knobs.in_progress_seconds = 3600
    emulator.knobs.partial_fraction = 0.0
    for batch_id in plan_batches(pg_engine, batch_settings):
        submit_batch(pg_engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)
    with sessionmaker(pg_engine).begin() as db:
        db.execute(update(AIBatchRequest).values(created_at=utcnow() - timedelta(hours=25)))

    # When the check tick runs, and again once the cancellation has ended
    first = check_batches(pg_engine, batch_settings, client)
    emulator.knobs.cancelling_seconds = 0.0
    check_batches(pg_engine, batch_settings, client)

    # Then it was cancelled at OpenAI, and its requests wait for a new batch
    assert first.cancelled == 1
    [batch] = _batches(pg_engine)
    assert batch.status is AIBatchRequestStatus.PROCESSED and "cancelled" in (batch.error_message or "")
    with sessionmaker(pg_engine)() as db:
        assert (
            db.scalar(
                select(func.count())
                .select_from(AIProcessingRequest)
                .where(AIProcessingRequest.processing_status == AIRequestStatus.PENDING_BATCHING)
            )
            == 4
        )


@pytest.mark.postgres
def test_the_synchronous_fallback_analyses_what_the_batches_could_not(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given the fallback on, one batch attempt allowed, and batches that fail
    settings = batch_settings.model_copy(update={"batch_sync_fallback": True, "batch_max_attempts": 1})
    session_ids = _queued_sessions(pg_engine, settings, 2)
    emulator.knobs.batch_outcome = "failed"
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.stages.session_analysis import analyze_sessions

    def analyse_sync(ids: list[uuid.UUID]) -> None:
        with ThreadPoolExecutor(2) as calls:
            analyze_sessions(pg_engine, settings, ids, client=client, calls=calls)

    # When the batch fails
    for batch_id in plan_batches(pg_engine, settings):
        submit_batch(pg_engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)
    check_batches(pg_engine, settings, client, analyse_sync=analyse_sync)

    # Then each session was analysed with one synchronous call instead
    assert _ai_statuses(pg_engine) == {ProcessingStatus.COMPLETED: 2}
    assert sorted(entry.kind for entry in emulator.ledger()) == ["chat", "chat"]
    assert _billed_sessions(emulator) == sorted(map(str, session_ids))


@pytest.mark.postgres
def test_an_answer_for_a_conversation_that_changed_meanwhile_is_not_applied(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given two sessions in a submitted batch
    changed, unchanged = _queued_sessions(pg_engine, batch_settings, 2)
    for batch_id in plan_batches(pg_engine, batch_settings):
        submit_batch(pg_engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)

    # When the first one's CSV row changes: import processing derives it again and it is handed over again
    with sessionmaker(pg_engine).begin() as db:
        apply_stage_changes(
            db, [StageChange(changed, ProcessingStage.AI_ANALYSIS, ProcessingStatus.PENDING)], utcnow()
        )
    enqueue_for_batch(pg_engine, batch_settings, [changed])
    check_batches(pg_engine, batch_settings, client)

    # Then its stale answer is recorded (it was paid for) but not applied, and a fresh request waits for it
    assert _ai_statuses(pg_engine) == {ProcessingStatus.COMPLETED: 1, ProcessingStatus.IN_PROGRESS: 1}
    with sessionmaker(pg_engine)() as db:
        rows = db.execute(
            select(
                AIProcessingRequest.processing_status,
                AIProcessingRequest.error_message,
                AIProcessingRequest.prompt_tokens,
                AIProcessingRequest.total_cost_eur,
            )
            .where(AIProcessingRequest.session_id == changed)
            .order_by(AIProcessingRequest.requested_at)
        ).all()
    assert [row.processing_status for row in rows] == [
        AIRequestStatus.PROCESSING_FAILED,
        AIRequestStatus.PENDING_BATCHING,
    ]
    assert (rows[0].error_message or "").startswith("superseded")
    # And what OpenAI billed for it is counted, as for any answer billed and not used
    assert rows[0].prompt_tokens > 0 and rows[0].total_cost_eur > 0

    # When the next batch runs
    _run_batches(pg_engine, batch_settings, client, rounds=1)

    # Then the session is analysed from its current conversation
    assert _ai_statuses(pg_engine) == {ProcessingStatus.COMPLETED: 2}
    assert _billed_sessions(emulator) == sorted([str(changed), str(changed), str(unchanged)])


@pytest.mark.postgres
def test_lines_spread_over_chunks_and_both_files_are_each_applied_once(
    pg_engine: Engine,
    batch_settings: Settings,
    client: openai.OpenAI,
    emulator: OpenAIEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given chunks of three lines, and a batch of 8 whose output and error files hold 4 lines each: the
    # second chunk takes the last output line and the first two error lines
    monkeypatch.setattr(batch_ingest, "CHUNK_LINES", 3)
    settings = batch_settings.model_copy(update={"batch_max_attempts": 3})
    _queued_sessions(pg_engine, settings, 8)
    emulator.knobs.batch_error_fraction = 0.5

    # When it is processed
    _run_batches(pg_engine, settings, client, rounds=1)

    # Then every line was applied once, whatever chunk it fell in, and the batch adds up its requests
    assert _ai_statuses(pg_engine) == {ProcessingStatus.COMPLETED: 4, ProcessingStatus.IN_PROGRESS: 4}
    assert _failure_messages(pg_engine) == ["HTTP 500: " + _SERVER_ERROR] * 4
    [batch] = _batches(pg_engine)
    with sessionmaker(pg_engine)() as db:
        answered = db.execute(
            select(
                func.count(),
                func.sum(AIProcessingRequest.prompt_tokens),
                func.sum(AIProcessingRequest.completion_tokens),
                func.sum(AIProcessingRequest.total_cost_eur),
            ).where(AIProcessingRequest.success)
        ).one()
        retries = db.scalar(
            select(func.count())
            .select_from(AIProcessingRequest)
            .where(AIProcessingRequest.processing_status == AIRequestStatus.PENDING_BATCHING)
        )
        questions = db.scalar(select(func.count()).select_from(SessionQuestion))
    assert (batch.completed_count, batch.failed_count) == (4, 4) and retries == 4
    assert (answered[0], batch.prompt_tokens, batch.completion_tokens) == (4, answered[1], answered[2])
    assert batch.total_cost_eur == pytest.approx(answered[3]) and batch.total_cost_eur > 0
    assert questions


class _TamperedFiles:
    """Stands for the Files API of a client: serves the given lines as the content of every file."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.with_streaming_response = self

    @contextmanager
    def content(self, file_id: str) -> Iterator[_TamperedFiles]:
        yield self

    def iter_lines(self) -> Iterator[str]:
        yield from self.lines


@pytest.mark.postgres
def test_a_line_whose_completion_cannot_be_read_is_recorded_unpaid_and_retried(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI
) -> None:
    # Given a finished batch of three whose output has a completion without its creation time and one
    # whose token count is not a number
    _queued_sessions(pg_engine, batch_settings, 3)
    [batch_id] = plan_batches(pg_engine, batch_settings)
    submit_batch(pg_engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)
    [batch] = _batches(pg_engine)
    assert batch.openai_batch_id is not None
    remote = client.batches.retrieve(batch.openai_batch_id)
    while remote.status != "completed":
        time.sleep(0.05)
        remote = client.batches.retrieve(batch.openai_batch_id)
    assert remote.output_file_id is not None
    lines = [json.loads(line) for line in client.files.content(remote.output_file_id).text.splitlines()]
    del lines[0]["response"]["body"]["created"]
    lines[1]["response"]["body"]["usage"]["prompt_tokens"] = "many"
    tampered = SimpleNamespace(files=_TamperedFiles([json.dumps(line) for line in lines]))

    # When it is ingested
    result = ingest_batch(
        pg_engine,
        batch_settings,
        cast(openai.OpenAI, tampered),
        batch_id,
        remote_status="completed",
        output_file_id=remote.output_file_id,
        error_file_id=None,
    )

    # Then the two unreadable completions fail with the reason, without tokens, and wait for another batch
    assert (result.completed, result.failed) == (1, 2)
    with sessionmaker(pg_engine)() as db:
        failed = db.execute(
            select(AIProcessingRequest.error_message, AIProcessingRequest.prompt_tokens).where(
                AIProcessingRequest.processing_status == AIRequestStatus.PROCESSING_FAILED
            )
        ).all()
        answered = db.scalar(select(AIProcessingRequest.prompt_tokens).where(AIProcessingRequest.success))
    assert sorted(failed) == [
        ("unreadable completion: Field required", 0),
        ("unreadable completion: Input should be a valid integer, unable to parse string as an integer", 0),
    ]
    assert result.prompt_tokens == answered and answered
    assert _ai_statuses(pg_engine) == {ProcessingStatus.COMPLETED: 1, ProcessingStatus.IN_PROGRESS: 2}


def _stored_analysis(engine: Engine, session_id: uuid.UUID) -> dict[str, Any]:
    """What a session holds after its analysis was applied, without ids: fields, stage rows, questions."""
    with sessionmaker(engine)() as db:
        chat = db.get_one(ChatSession, session_id)
        stages = db.scalars(
            select(SessionProcessingStatus)
            .where(
                SessionProcessingStatus.session_id == session_id,
                SessionProcessingStatus.stage.in_(
                    [ProcessingStage.AI_ANALYSIS, ProcessingStage.QUESTION_EXTRACTION]
                ),
            )
            .order_by(SessionProcessingStatus.stage)
        ).all()
        questions = db.execute(
            select(SessionQuestion.order, Question.content)
            .join(Question, Question.id == SessionQuestion.question_id)
            .where(SessionQuestion.session_id == session_id)
            .order_by(SessionQuestion.order)
        ).all()
    return {
        "session": (
            chat.language,
            chat.sentiment,
            chat.escalated,
            chat.forwarded_hr,
            chat.category,
            chat.summary,
            chat.updated_at,
        ),
        "stages": [
            (
                stage.stage,
                stage.status,
                stage.started_at,
                stage.completed_at,
                stage.error_message,
                stage.retry_count,
                stage.stage_metadata,
                stage.lease_expires_at,
                stage.leased_by,
                stage.updated_at,
            )
            for stage in stages
        ],
        "questions": [tuple(row) for row in questions],
    }


@pytest.mark.postgres
@pytest.mark.parametrize(
    "questions",
    [
        ["When is my schedule online?", "  when is my schedule online? ", "Can I swap a shift?"],
        [],
    ],
)
def test_a_chunk_written_set_based_stores_exactly_what_the_row_by_row_path_stores(
    pg_engine: Engine, questions: list[str]
) -> None:
    # Given two alike sessions whose AI analysis is in progress, holding questions of an earlier analysis
    now = utcnow()
    with sessionmaker(pg_engine).begin() as db:
        company = make_company(db)
        sessions = [make_analysable_session(db, company, TURNS).id for _ in range(2)]
        apply_stage_changes(
            db,
            [
                StageChange(session_id, ProcessingStage.AI_ANALYSIS, ProcessingStatus.FAILED, "earlier")
                for session_id in sessions
            ],
            now - timedelta(hours=1),
        )
        db.execute(
            update(SessionProcessingStatus)
            .where(SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS)
            .values(
                status=ProcessingStatus.IN_PROGRESS,
                started_at=now - timedelta(minutes=5),
                completed_at=None,
                error_message=None,
                lease_expires_at=now + timedelta(minutes=5),
                leased_by="worker-1",
            )
        )
        earlier = {
            session_id: Applied(
                _analysis(session_id, ["An old question?", "Can I swap a shift?"]), "gpt-4o", None
            )
            for session_id in sessions
        }
        apply_analyses(db, earlier, now - timedelta(minutes=1), max_question_chars=500)

    # When the same answer is applied to one row by row (the synchronous path) and to the other set-based
    row_by_row, set_based = sessions
    with sessionmaker(pg_engine).begin() as db:
        applied = {row_by_row: Applied(_analysis(row_by_row, questions), "gpt-4o", "req_1")}
        apply_stage_changes(db, apply_analyses(db, applied, now, max_question_chars=500), now)
    with sessionmaker(pg_engine).begin() as db:
        answer = answer_of(_analysis(set_based, questions), "gpt-4o", "req_1", max_question_chars=500)
        complete_analyses(db, {set_based: answer}, now)

    # Then both sessions hold the same: AI fields, both stage rows and their metadata, the questions
    assert _stored_analysis(pg_engine, set_based) == _stored_analysis(pg_engine, row_by_row)
    stored = _stored_analysis(pg_engine, set_based)
    assert [row[1] for row in stored["stages"]] == [ProcessingStatus.COMPLETED] * 2
    assert len(stored["questions"]) == len({question.strip().casefold() for question in questions})


def _analysis(session_id: uuid.UUID, questions: list[str]) -> SessionAnalysis:
    return SessionAnalysis(
        language="nl",
        sentiment=SentimentCategory.NEGATIVE,
        escalated=True,
        forwarded_hr=False,
        category=SessionCategory.SCHEDULE_HOURS,
        questions=questions,
        summary="The user asked when the schedule is published.",
        session_id=str(session_id),
    )


@pytest.fixture
def sqlite_batch_settings(sqlite_settings: Settings, emulator: OpenAIEmulator) -> Settings:
    emulator.reset()
    emulator.knobs = Knobs(**INSTANT)
    return sqlite_settings.model_copy(
        update={
            "openai_base_url": emulator.url,
            "batch_min_requests": 1,
            "batch_max_requests": 1000,
            "batch_max_attempts": 2,
        }
    )


def test_the_embedded_sqlite_ingests_row_by_row_with_the_same_outcome(
    sqlite_engine: Engine, sqlite_batch_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given the embedded SQLite, three attempts per request, and a batch of 6 where half the lines fail
    settings = sqlite_batch_settings.model_copy(update={"batch_max_attempts": 3})
    session_ids = _queued_sessions(sqlite_engine, settings, 6)
    emulator.knobs.batch_error_fraction = 0.5

    with openai_client(settings) as sdk:
        # When it is processed
        _run_batches(sqlite_engine, settings, sdk, rounds=1)

        # Then the failed lines carry their message and wait for the next batch, the others are applied
        assert _failure_messages(sqlite_engine) == ["HTTP 500: " + _SERVER_ERROR] * 3
        assert _ai_statuses(sqlite_engine) == {
            ProcessingStatus.COMPLETED: 3,
            ProcessingStatus.IN_PROGRESS: 3,
        }

        # When the retry batch answers one of them with an invalid analysis, and the last one answers well
        emulator.knobs.batch_error_fraction = 0.0
        retried = [session_id for session_id in session_ids if not _analysed(sqlite_engine, session_id)]
        emulator.knobs.session_faults = {str(retried[0]): "schema_violation"}
        _run_batches(sqlite_engine, settings, sdk, rounds=1)
        emulator.knobs.session_faults = {}
        _run_batches(sqlite_engine, settings, sdk, rounds=1)

    # Then the invalid answer was recorded with its cost, and every session ends analysed with its questions
    assert _ai_statuses(sqlite_engine) == {ProcessingStatus.COMPLETED: 6}
    with sessionmaker(sqlite_engine)() as db:
        invalid = db.execute(
            select(AIProcessingRequest.error_message, AIProcessingRequest.total_cost_eur).where(
                AIProcessingRequest.error_message.startswith("invalid answer")
            )
        ).all()
        extracted = db.scalars(
            select(SessionProcessingStatus.stage_metadata).where(
                SessionProcessingStatus.stage == ProcessingStage.QUESTION_EXTRACTION,
                SessionProcessingStatus.status == ProcessingStatus.COMPLETED,
            )
        ).all()
        stored = db.scalar(select(func.count()).select_from(SessionQuestion))
    assert len(invalid) == 1 and invalid[0][1] > 0
    assert len(extracted) == 6
    assert stored == sum(metadata["questionsProcessed"] for metadata in extracted if metadata)
    assert stored
    # Billed: the 3 answers, then the 3 retries (the invalid one too), then the last retry; error lines never
    assert len(emulator.ledger()) == 3 + 3 + 1


def _finished_batch_lines(
    engine: Engine, settings: Settings, client: openai.OpenAI, count: int
) -> tuple[uuid.UUID, str, list[dict[str, Any]]]:
    """A submitted batch of ``count`` sessions, run to completion: its id, output file id and output lines."""
    _queued_sessions(engine, settings, count)
    [batch_id] = plan_batches(engine, settings)
    submit_batch(engine, client, batch_id, max_prompt_tokens=PROMPT_TOKENS)
    [batch] = _batches(engine)
    assert batch.openai_batch_id is not None
    remote = client.batches.retrieve(batch.openai_batch_id)
    while remote.status != "completed":
        time.sleep(0.05)
        remote = client.batches.retrieve(batch.openai_batch_id)
    assert remote.output_file_id is not None
    lines = [json.loads(line) for line in client.files.content(remote.output_file_id).text.splitlines()]
    return batch_id, remote.output_file_id, lines


def _edit_answer(line: dict[str, Any], **fields: Any) -> str:
    """Change fields of the answer in an output line; return the answer's session id."""
    message = line["response"]["body"]["choices"][0]["message"]
    answer = json.loads(message["content"])
    answer.update(fields)
    message["content"] = json.dumps(answer)
    return str(answer["session_id"])


def _ingest_lines(
    engine: Engine,
    settings: Settings,
    batch_id: uuid.UUID,
    output_file_id: str,
    lines: list[dict[str, Any]],
    files: type[_TamperedFiles] = _TamperedFiles,
) -> batch_ingest.IngestResult:
    """Ingest the batch with ``lines`` as its output file, served by ``files``."""
    tampered = SimpleNamespace(files=files([json.dumps(line) for line in lines]))
    return ingest_batch(
        engine,
        settings,
        cast(openai.OpenAI, tampered),
        batch_id,
        remote_status="completed",
        output_file_id=output_file_id,
        error_file_id=None,
    )


@pytest.mark.postgres
def test_a_question_longer_than_the_index_takes_is_cut_and_stored(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI
) -> None:
    # Given a finished batch whose first answer has a question of 2,943 characters (about 3,500 bytes,
    # more than the unique index on question.content takes)
    batch_id, output_file_id, lines = _finished_batch_lines(pg_engine, batch_settings, client, 2)
    letters, pick = "abcdefghijklmnopqrstuvwxyzäöüéèßçñ0123456789 ", random.Random(15).choice
    long_question = "".join(pick(letters) for _ in range(2_943)) + "?"
    session_id = _edit_answer(lines[0], questions=[long_question, "When do I get paid?"])

    # When it is ingested
    result = _ingest_lines(pg_engine, batch_settings, batch_id, output_file_id, lines)

    # Then both answers are applied, the long question cut to AI_QUESTION_MAX_CHARS and marked as cut
    assert (result.completed, result.failed) == (2, 0)
    with sessionmaker(pg_engine)() as db:
        stored = db.scalars(
            select(Question.content)
            .join(SessionQuestion, SessionQuestion.question_id == Question.id)
            .where(SessionQuestion.session_id == uuid.UUID(session_id))
            .order_by(SessionQuestion.order)
        ).all()
    limit = batch_settings.ai_question_max_chars
    assert stored == [long_question[: limit - 1] + "…", "When do I get paid?"]


class _BrokenFiles(_TamperedFiles):
    """Serves the given lines, then fails as a connection lost in the middle of the file."""

    def iter_lines(self) -> Iterator[str]:
        yield from self.lines
        raise openai.APIConnectionError(request=httpx2.Request("GET", "http://127.0.0.1/files/output"))


@pytest.mark.postgres
def test_a_file_that_breaks_off_keeps_the_chunks_committed_and_the_next_ingest_applies_the_rest_once(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given chunks of two lines, and a batch of six whose output file breaks off after its fifth line: the
    # first chunk is committed, the second sent to the server, the third being read when the file breaks
    monkeypatch.setattr(batch_ingest, "CHUNK_LINES", 2)
    batch_id, output_file_id, lines = _finished_batch_lines(pg_engine, batch_settings, client, 6)

    # When it is ingested, and again once the file can be read whole
    with pytest.raises(openai.APIConnectionError):
        _ingest_lines(pg_engine, batch_settings, batch_id, output_file_id, lines[:5], _BrokenFiles)
    after_the_break = _ai_statuses(pg_engine)
    again = _ingest_lines(pg_engine, batch_settings, batch_id, output_file_id, lines)

    # Then the break kept the first chunk and nothing of the one in flight; the second ingest applied the
    # four lines still open, each once
    assert after_the_break == {ProcessingStatus.COMPLETED: 2, ProcessingStatus.IN_PROGRESS: 4}
    assert (again.completed, again.failed, again.missing) == (4, 0, 0)
    with sessionmaker(pg_engine)() as db:
        requests = db.execute(
            select(AIProcessingRequest.processing_status, func.count()).group_by(
                AIProcessingRequest.processing_status
            )
        ).all()
        listed = db.scalar(select(func.count()).select_from(SessionQuestion))
        distinct = db.scalar(select(func.count(func.distinct(SessionQuestion.session_id))))
    assert requests == [(AIRequestStatus.PROCESSING_COMPLETE, 6)]
    assert _ai_statuses(pg_engine) == {ProcessingStatus.COMPLETED: 6}
    # And the batch counts all six lines, with the tokens and cost of every request: the break lost none
    [batch] = _batches(pg_engine)
    with sessionmaker(pg_engine)() as db:
        billed = db.execute(
            select(
                func.sum(AIProcessingRequest.prompt_tokens),
                func.sum(AIProcessingRequest.completion_tokens),
                func.sum(AIProcessingRequest.total_cost_eur),
            )
        ).one()
    assert (batch.status, batch.completed_count, batch.failed_count) == (AIBatchRequestStatus.PROCESSED, 6, 0)
    assert (batch.prompt_tokens, batch.completion_tokens) == (billed[0], billed[1]) and billed[0] > 0
    assert batch.total_cost_eur == pytest.approx(billed[2])
    assert distinct == 6 and listed == sum(
        len(json.loads(line["response"]["body"]["choices"][0]["message"]["content"])["questions"])
        for line in lines
    )


def _session_of(line: dict[str, Any]) -> uuid.UUID:
    """The session an output line answers, as its answer says."""
    return uuid.UUID(json.loads(line["response"]["body"]["choices"][0]["message"]["content"])["session_id"])


def _requests_of(engine: Engine, session_id: uuid.UUID) -> list[Any]:
    """The session's request rows, oldest first: status, error, prompt tokens."""
    with sessionmaker(engine)() as db:
        return list(
            db.execute(
                select(
                    AIProcessingRequest.processing_status,
                    AIProcessingRequest.error_message,
                    AIProcessingRequest.prompt_tokens,
                )
                .where(AIProcessingRequest.session_id == session_id)
                .order_by(AIProcessingRequest.requested_at)
            ).all()
        )


@pytest.mark.postgres
def test_completions_with_more_than_the_usual_line_are_applied_as_the_sdk_reads_them(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI
) -> None:
    # Given a finished batch of three whose completions each hold what the usual line has not, and the SDK
    # still reads: a token count as text (it reads "700" as 700), log probabilities, a cited source
    batch_id, output_file_id, lines = _finished_batch_lines(pg_engine, batch_settings, client, 3)
    usage = lines[0]["response"]["body"]["usage"]
    prompt_tokens = usage["prompt_tokens"]
    usage["prompt_tokens"] = str(prompt_tokens)
    lines[1]["response"]["body"]["choices"][0]["logprobs"] = {
        "content": [{"token": "{", "logprob": -0.01, "top_logprobs": []}],
        "refusal": None,
    }
    lines[2]["response"]["body"]["choices"][0]["message"]["annotations"] = [
        {
            "type": "url_citation",
            "url_citation": {"start_index": 0, "end_index": 1, "title": "Leave", "url": "https://a.example"},
        }
    ]

    # When it is ingested
    result = _ingest_lines(pg_engine, batch_settings, batch_id, output_file_id, lines)

    # Then the three answers are applied, with the tokens the SDK read
    assert (result.completed, result.failed) == (3, 0)
    assert _ai_statuses(pg_engine) == {ProcessingStatus.COMPLETED: 3}
    [(status, error, tokens)] = _requests_of(pg_engine, _session_of(lines[0]))
    assert (status, error, tokens) == (AIRequestStatus.PROCESSING_COMPLETE, None, prompt_tokens)


@pytest.mark.postgres
def test_a_refusal_and_a_completion_without_a_choice_are_invalid_answers_paid_for(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI
) -> None:
    # Given a finished batch of two: the model refused the first, and the second has no choice at all
    batch_id, output_file_id, lines = _finished_batch_lines(pg_engine, batch_settings, client, 2)
    refusing = _session_of(lines[0])
    lines[0]["response"]["body"]["choices"][0]["message"].update(
        content=None, refusal="I'm sorry, but I can't help with that request."
    )
    lines[1]["response"]["body"]["choices"] = []

    # When it is ingested
    result = _ingest_lines(pg_engine, batch_settings, batch_id, output_file_id, lines)

    # Then each fails with its reason, keeps the tokens it was billed for, and waits for another batch
    assert (result.completed, result.failed) == (0, 2)
    [refused, _retry] = _requests_of(pg_engine, refusing)
    assert (
        refused.error_message
        == "invalid answer: model refused: I'm sorry, but I can't help with that request."
    )
    assert _failure_messages(pg_engine) == sorted([refused.error_message, "invalid answer: no content"])
    with sessionmaker(pg_engine)() as db:
        billed = db.scalars(
            select(AIProcessingRequest.prompt_tokens).where(
                AIProcessingRequest.processing_status == AIRequestStatus.PROCESSING_FAILED
            )
        ).all()
    assert len(billed) == 2 and all(billed)
    assert _ai_statuses(pg_engine) == {ProcessingStatus.IN_PROGRESS: 2}


@pytest.mark.postgres
@pytest.mark.parametrize("moved_on", ["sent back to pending", "no AI_ANALYSIS row"])
def test_an_answer_whose_session_is_not_being_analysed_is_recorded_and_not_applied(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI, moved_on: str
) -> None:
    # Given a finished batch of two, and meanwhile the first session's AI analysis was sent back to pending
    # (or its AI_ANALYSIS row is gone)
    batch_id, output_file_id, lines = _finished_batch_lines(pg_engine, batch_settings, client, 2)
    session_id = _session_of(lines[0])
    with sessionmaker(pg_engine).begin() as db:
        if moved_on == "sent back to pending":
            change = StageChange(session_id, ProcessingStage.AI_ANALYSIS, ProcessingStatus.PENDING)
            apply_stage_changes(db, [change], utcnow())
        else:
            db.execute(
                delete(SessionProcessingStatus).where(
                    SessionProcessingStatus.session_id == session_id,
                    SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
                )
            )

    # When it is ingested
    result = _ingest_lines(pg_engine, batch_settings, batch_id, output_file_id, lines)

    # Then its answer is recorded as superseded with what it was billed, not applied, and no fresh request is
    # made for it (nothing analyses it now); the other answer is applied
    assert (result.completed, result.failed) == (1, 0)
    [(status, error, tokens)] = _requests_of(pg_engine, session_id)
    assert (status, error) == (AIRequestStatus.PROCESSING_FAILED, batch_ingest.SUPERSEDED) and tokens
    assert _analysed(pg_engine, session_id) is False
    assert _analysed(pg_engine, _session_of(lines[1])) is True


@contextmanager
def _summary_refused(engine: Engine, summary: str) -> Iterator[None]:
    """A check constraint on ``session.summary`` that refuses ``summary``, for the duration of the block."""
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "ALTER TABLE session ADD CONSTRAINT test_refused_summary "
            f"CHECK (summary IS NULL OR summary <> '{summary}') NOT VALID"
        )
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE session DROP CONSTRAINT test_refused_summary")


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("summary", "refused_by"),
    [
        # PostgreSQL cannot hold a NUL: the kept answer (jsonb) of the chunk's requests is refused first.
        ("The user asked \x00 about pay.", "unsupported Unicode escape sequence"),
        # A constraint of the server refuses the chunk's UPDATE of the sessions.
        ("This summary is refused by the database.", "test_refused_summary"),
    ],
)
# One chunk; or chunks of two, so that the refused chunk fails while the next one is prepared.
@pytest.mark.parametrize("chunk_lines", [batch_ingest.CHUNK_LINES, 2])
def test_a_line_the_database_refuses_fails_alone_and_the_rest_of_its_chunk_lands(
    pg_engine: Engine,
    batch_settings: Settings,
    client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
    summary: str,
    refused_by: str,
    chunk_lines: int,
) -> None:
    # Given a finished batch of five whose third answer has a summary the database refuses: the set-based
    # write of the chunk is refused whole
    monkeypatch.setattr(batch_ingest, "CHUNK_LINES", chunk_lines)
    batch_id, output_file_id, lines = _finished_batch_lines(pg_engine, batch_settings, client, 5)
    refused = _edit_answer(lines[2], summary=summary)

    # When it is ingested
    with _summary_refused(pg_engine, "This summary is refused by the database."):
        result = _ingest_lines(pg_engine, batch_settings, batch_id, output_file_id, lines)

    # Then the four good answers are applied, and the refused line is failed with the database's reason
    assert (result.completed, result.failed) == (4, 1)
    assert _ai_statuses(pg_engine) == {ProcessingStatus.COMPLETED: 4, ProcessingStatus.IN_PROGRESS: 1}
    with sessionmaker(pg_engine)() as db:
        failed = db.execute(
            select(AIProcessingRequest.session_id, AIProcessingRequest.error_message).where(
                AIProcessingRequest.processing_status == AIRequestStatus.PROCESSING_FAILED
            )
        ).all()
        retry = db.scalar(
            select(AIProcessingRequest.attempts).where(
                AIProcessingRequest.session_id == uuid.UUID(refused),
                AIProcessingRequest.processing_status == AIRequestStatus.PENDING_BATCHING,
            )
        )
    [(session_id, reason)] = failed
    assert str(session_id) == refused
    assert reason is not None and reason.startswith("the database refused the answer: ")
    assert refused_by in reason
    # And it is taken out of the way: its session asks again in a later batch, and the batch is PROCESSED
    assert retry == 2
    [batch] = _batches(pg_engine)
    assert batch.status is AIBatchRequestStatus.PROCESSED
    assert (batch.completed_count, batch.failed_count) == (4, 1)


@pytest.mark.postgres
def test_a_batch_prompt_too_long_is_cut_and_the_cut_recorded_on_the_session(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI
) -> None:
    # Given a session of 3,000 messages queued for a batch
    with sessionmaker(pg_engine).begin() as db:
        company = make_company(db)
        turns = [("user", f"Question {number}: how many vacation days are left?") for number in range(3_000)]
        session_id = make_analysable_session(db, company, turns).id
    enqueue_for_batch(pg_engine, batch_settings, [session_id])
    [batch_id] = plan_batches(pg_engine, batch_settings)

    # When its batch is submitted with a prompt budget of 2,000 tokens
    submit_batch(pg_engine, client, batch_id, max_prompt_tokens=2_000)

    # Then the session records what its prompt left out
    with sessionmaker(pg_engine)() as db:
        truncation = db.get_one(ChatSession, session_id).prompt_truncation
    assert truncation is not None and truncation.startswith("prompt limited to about 2000 tokens")
