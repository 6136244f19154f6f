"""Batches filled per model across companies, within the enqueued-token limit, on real PostgreSQL and the
OpenAI emulator over HTTP (which fails a batch over the limit with ``token_limit_exceeded``, as OpenAI does).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import openai
import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import sessionmaker

from pipeline.analysis.openai_calls import openai_client
from pipeline.cli.batches import SEVERAL_COMPANIES, newest_batches
from pipeline.db.enums import AIBatchRequestStatus, AIRequestStatus
from pipeline.db.models import AIBatchRequest, AIProcessingRequest, ChatSession, CompanyAISpend
from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator
from pipeline.settings import Settings
from pipeline.stages import batch_submit
from pipeline.stages.batch_check import check_batches
from pipeline.stages.batch_enqueue import enqueue_for_batch
from pipeline.stages.batch_submit import plan_batches, submit_batch
from pipeline.stages.budgets import month_of, set_budget
from tests.factories import make_analysable_session, make_company

TURNS = [("user", "When is my schedule for next week online?"), ("assistant", "On Friday, in the app.")]


@pytest.fixture(scope="module")
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as running:
        yield running


@pytest.fixture
def batch_settings(pg_settings: Settings, emulator: OpenAIEmulator) -> Settings:
    emulator.reset()
    # Batches stay in progress: their tokens stay enqueued for the whole test.
    emulator.knobs = Knobs(validating_seconds=0.0, in_progress_seconds=3600.0)
    return pg_settings.model_copy(
        update={"openai_base_url": emulator.url, "batch_min_requests": 1, "batch_max_requests": 1000}
    )


@pytest.fixture
def client(batch_settings: Settings) -> Iterator[openai.OpenAI]:
    with openai_client(batch_settings) as sdk:
        yield sdk


def _queued(engine: Engine, settings: Settings, companies: int, each: int) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    with sessionmaker(engine).begin() as db:
        for number in range(companies):
            company = make_company(db, name=f"Company {number}")
            ids += [make_analysable_session(db, company, TURNS).id for _ in range(each)]
    assert enqueue_for_batch(engine, settings, ids) == len(ids)
    return ids


def _estimate(engine: Engine) -> int:
    """The pipeline's estimate of one request's prompt tokens (they are all alike here)."""
    with sessionmaker(engine)() as db:
        return max(db.scalars(select(AIProcessingRequest.estimated_prompt_tokens)))


def _submit(engine: Engine, settings: Settings, client: openai.OpenAI) -> list[uuid.UUID]:
    planned = plan_batches(engine, settings)
    for batch_id in planned:
        submit_batch(engine, client, batch_id, max_prompt_tokens=16_000)
    check_batches(engine, settings, client)
    return planned


def _batches(engine: Engine) -> list[AIBatchRequest]:
    with sessionmaker(engine)() as db:
        return list(db.scalars(select(AIBatchRequest).order_by(AIBatchRequest.created_at)))


@pytest.mark.postgres
def test_one_model_s_requests_of_many_companies_fill_one_batch(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI
) -> None:
    # Given five small companies with three requests each, all for gpt-4o
    session_ids = _queued(pg_engine, batch_settings, 5, 3)

    # When one submit tick runs
    planned = _submit(pg_engine, batch_settings, client)

    # Then they all went into one batch that names no single company; each request keeps its session
    assert len(planned) == 1
    [batch] = _batches(pg_engine)
    assert (batch.company_id, batch.request_count) == (None, 15)
    with sessionmaker(pg_engine)() as db:
        companies = set(
            db.scalars(
                select(ChatSession.company_id)
                .join(AIProcessingRequest, AIProcessingRequest.session_id == ChatSession.id)
                .where(AIProcessingRequest.batch_id == batch.id)
            )
        )
    assert len(companies) == 5 and len(session_ids) == 15
    # And `livedash batches list` shows it as a batch of several companies
    with sessionmaker(pg_engine)() as db:
        [listed] = newest_batches(db, limit=10)
    assert (listed["id"], listed["company"]) == (str(batch.id), SEVERAL_COMPANIES)


@pytest.mark.postgres
def test_the_emulator_fails_a_batch_over_the_enqueued_token_limit(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given an organisation limit at the emulator that the pipeline is not told of: three of the pipeline's
    # (generous) estimates, about six requests as the emulator counts them
    _queued(pg_engine, batch_settings, 1, 4)
    emulator.knobs.enqueued_token_limit = 3 * _estimate(pg_engine)
    _submit(pg_engine, batch_settings, client)
    _queued(pg_engine, batch_settings, 1, 4)

    # When a second batch of 4 is submitted while the first is in progress
    _submit(pg_engine, batch_settings, client)

    # Then OpenAI's answer: the second batch fails with token_limit_exceeded, its requests go back to pending
    first, second = _batches(pg_engine)
    assert first.status is AIBatchRequestStatus.IN_PROGRESS
    assert second.status is AIBatchRequestStatus.FAILED
    assert "token_limit_exceeded" in (second.error_message or "")


@pytest.mark.postgres
def test_open_batches_stay_under_the_enqueued_token_limit_and_the_rest_waits(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given room for 5 requests' estimated tokens, at the pipeline and at the emulator alike
    _queued(pg_engine, batch_settings, 2, 4)
    limit = 5 * _estimate(pg_engine)
    settings = batch_settings.model_copy(update={"openai_batch_enqueued_token_limit": limit})
    emulator.knobs.enqueued_token_limit = limit

    # When two submit ticks run while the first batch is still in progress
    _submit(pg_engine, settings, client)
    second_tick = _submit(pg_engine, settings, client)

    # Then one batch of 5 was submitted and is in progress; nothing more fitted, so nothing failed
    [batch] = _batches(pg_engine)
    assert (batch.request_count, batch.status) == (5, AIBatchRequestStatus.IN_PROGRESS)
    assert batch.enqueued_tokens <= limit
    assert second_tick == []
    # And the three others wait for the next submit after the batch is done
    with sessionmaker(pg_engine)() as db:
        waiting = db.scalars(
            select(AIProcessingRequest.id).where(
                AIProcessingRequest.processing_status == AIRequestStatus.PENDING_BATCHING
            )
        ).all()
    assert len(waiting) == 3


@pytest.mark.postgres
def test_a_request_over_the_limit_on_its_own_is_noted_and_holds_nobody_back(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI
) -> None:
    # Given three queued requests, the oldest with a prompt no batch under the limit could take
    session_ids = _queued(pg_engine, batch_settings, 1, 3)
    limit = 10 * _estimate(pg_engine)
    with sessionmaker(pg_engine).begin() as db:
        db.execute(
            update(AIProcessingRequest)
            .where(AIProcessingRequest.session_id == session_ids[0])
            .values(estimated_prompt_tokens=limit + 1)
        )
    settings = batch_settings.model_copy(update={"openai_batch_enqueued_token_limit": limit})

    # When a submit tick runs
    _submit(pg_engine, settings, client)

    # Then the two others are in a batch; the oversized one waits, saying why
    [batch] = _batches(pg_engine)
    assert batch.request_count == 2
    with sessionmaker(pg_engine)() as db:
        note = db.scalar(
            select(AIProcessingRequest.error_message).where(AIProcessingRequest.session_id == session_ids[0])
        )
    assert note == f"its estimated prompt is over OPENAI_BATCH_ENQUEUED_TOKEN_LIMIT={limit}"


@pytest.mark.postgres
def test_lines_past_the_file_size_limit_wait_for_the_next_batch_with_their_budget_given_back(
    pg_engine: Engine, batch_settings: Settings, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given five queued requests of a company with a budget, and a file size limit that holds two lines
    session_ids = _queued(pg_engine, batch_settings, 1, 5)
    with sessionmaker(pg_engine).begin() as db:
        company_id = db.scalars(select(ChatSession.company_id).where(ChatSession.id == session_ids[0])).one()
        set_budget(db, company_id, Decimal("25.00"))
    monkeypatch.setattr(batch_submit, "MAX_FILE_BYTES", 2 * 6_000)

    # When one submit tick runs
    _submit(pg_engine, batch_settings, client)

    # Then the batch holds the lines that fitted; the others are pending again, holding no budget or tokens
    [batch] = _batches(pg_engine)
    with sessionmaker(pg_engine)() as db:
        in_batch = db.execute(
            select(AIProcessingRequest.reserved_eur, AIProcessingRequest.estimated_prompt_tokens).where(
                AIProcessingRequest.batch_id == batch.id
            )
        ).all()
        pending = db.scalars(
            select(AIProcessingRequest.reserved_eur).where(
                AIProcessingRequest.processing_status == AIRequestStatus.PENDING_BATCHING
            )
        ).all()
        spend = db.get(CompanyAISpend, (company_id, month_of(datetime.now(UTC))))
    assert 1 <= batch.request_count == len(in_batch) < 5
    assert len(pending) == 5 - batch.request_count and all(reserved == 0 for reserved in pending)
    assert batch.enqueued_tokens == sum(tokens for _, tokens in in_batch)
    assert spend is not None and spend.reserved_eur == sum(reserved for reserved, _ in in_batch)
