"""Monthly AI budgets and reused analyses, on real PostgreSQL with the OpenAI emulator over HTTP.

The budget is never passed, however many workers reserve at once; what does not fit waits with ``budget
reached`` and goes on by itself after a raise. An unchanged transcript is never paid for twice.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

import openai
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, create_engine, func, select, update
from sqlalchemy.orm import sessionmaker

from pipeline.analysis import (
    MAX_TOKENS,
    Price,
    estimate_prompt_tokens,
    fit_transcript,
    request_body,
    worst_case_eur,
)
from pipeline.analysis.openai_calls import openai_client
from pipeline.analysis.prompt import PromptMessage
from pipeline.db.enums import AIRequestStatus, ProcessingStage, ProcessingStatus
from pipeline.db.models import AIProcessingRequest, CompanyAISpend, Message, SessionProcessingStatus
from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator
from pipeline.settings import Settings
from pipeline.stages.batch_check import check_batches
from pipeline.stages.batch_enqueue import enqueue_for_batch
from pipeline.stages.batch_submit import plan_batches, submit_batch
from pipeline.stages.budgets import BUDGET_REACHED, month_of, reserve, set_budget
from pipeline.stages.session_analysis import AnalysisResult, analyze_sessions
from pipeline.stages.session_sweep import sweep_sessions
from pipeline.stages.stage_status import StageChange, apply_stage_changes
from tests.factories import START, make_analysable_session, make_company
from tests.stages.budget_worker import reserve_in_a_process

TURNS = [("user", "When is my schedule for next week online?"), ("assistant", "On Friday, in the app.")]
INSTANT = {"validating_seconds": 0.0, "in_progress_seconds": 0.0, "finalizing_seconds": 0.0}
#: gpt-4o's seeded synchronous price (USD per token).
GPT_4O = Price("gpt-4o", 0.0000025, 0.00001)


@pytest.fixture(scope="module")
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as running:
        yield running


@pytest.fixture
def ai_settings(pg_settings: Settings, emulator: OpenAIEmulator) -> Settings:
    emulator.reset()
    emulator.knobs = Knobs(retry_after=0.05, **INSTANT)
    return pg_settings.model_copy(
        update={"openai_base_url": emulator.url, "openai_max_attempts": 2, "batch_min_requests": 1}
    )


@pytest.fixture
def client(ai_settings: Settings) -> Iterator[openai.OpenAI]:
    with openai_client(ai_settings) as sdk:
        yield sdk


def _company_with_sessions(
    engine: Engine, count: int, budget: Decimal | None, turns: list[tuple[str, str]] = TURNS
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    with sessionmaker(engine).begin() as db:
        company = make_company(db)
        set_budget(db, company.id, budget)
        return company.id, [make_analysable_session(db, company, turns).id for _ in range(count)]


def _worst_case(session_id: uuid.UUID, settings: Settings, *, batch: bool) -> Decimal:
    """What one TURNS session reserves: the pipeline's own estimate at gpt-4o's price."""
    messages = [
        PromptMessage(role, content, START + timedelta(seconds=10 * order))
        for order, (role, content) in enumerate(TURNS)
    ]
    transcript = fit_transcript(messages, max_prompt_tokens=settings.openai_max_prompt_tokens)
    tokens = estimate_prompt_tokens(request_body("gpt-4o", str(session_id), transcript))
    return worst_case_eur(tokens, MAX_TOKENS, GPT_4O, batch=batch, eur_per_usd=settings.eur_per_usd)


def _room_for(count: int, session_id: uuid.UUID, settings: Settings, *, batch: bool) -> Decimal:
    """A budget in cents that holds ``count`` worst cases and not one more."""
    worst = _worst_case(session_id, settings, batch=batch)
    budget = (worst * count).quantize(Decimal("0.01"), rounding=ROUND_CEILING)
    assert budget < worst * (count + 1)
    return budget


def _analyse(engine: Engine, settings: Settings, session_ids: list[uuid.UUID]) -> AnalysisResult:
    with openai_client(settings) as sdk, ThreadPoolExecutor(max_workers=2) as calls:
        return analyze_sessions(engine, settings, session_ids, client=sdk, calls=calls)


def _ledger_cost(engine: Engine, company_sessions: list[uuid.UUID]) -> Decimal:
    """The exact sum of what the pipeline recorded as billed for these sessions."""
    with sessionmaker(engine)() as db:
        total = db.scalar(
            select(func.coalesce(func.sum(func.cast(AIProcessingRequest.total_cost_eur, _NUMERIC)), 0)).where(
                AIProcessingRequest.session_id.in_(company_sessions)
            )
        )
    return Decimal(total or 0)


def _spend(engine: Engine, company_id: uuid.UUID) -> CompanyAISpend:
    with sessionmaker(engine)() as db:
        row = db.get(CompanyAISpend, (company_id, month_of(datetime.now(UTC))))
        assert row is not None
        return row


def _analysis_rows(engine: Engine, session_ids: list[uuid.UUID]) -> list[SessionProcessingStatus]:
    with sessionmaker(engine)() as db:
        return list(
            db.scalars(
                select(SessionProcessingStatus).where(
                    SessionProcessingStatus.session_id.in_(session_ids),
                    SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
                )
            )
        )


_NUMERIC = AIProcessingRequest.reserved_eur.type


@pytest.mark.postgres
def test_concurrent_reservations_never_pass_the_budget(pg_settings: Settings, pg_engine: Engine) -> None:
    # Given a company with a budget of exactly 7 reservations of 1.10 EUR, and 6 workers with their own
    # connections, started together
    with sessionmaker(pg_engine).begin() as db:
        company_id = make_company(db).id
    amount, budget, month = Decimal("1.10"), Decimal("7.70"), month_of(datetime.now(UTC))
    workers = 6
    start = threading.Barrier(workers)
    taken: list[int] = []

    def worker() -> None:
        engine = create_engine(pg_settings.database_url)
        try:
            start.wait()
            mine = 0
            for _ in range(5):
                with sessionmaker(engine).begin() as db:
                    mine += reserve(db, company_id, month, [amount], budget)
            taken.append(mine)
        finally:
            engine.dispose()

    # When each tries to reserve 5 times, 30 reservations in all
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then exactly 7 were granted and the ledger row holds exactly the budget
    assert sum(taken) == 7
    with sessionmaker(pg_engine)() as db:
        row = db.get(CompanyAISpend, (company_id, month))
        assert row is not None
        assert row.reserved_eur + row.spent_eur == budget


@pytest.mark.postgres
def test_worker_processes_reserving_at_once_never_pass_the_budget(
    pg_settings: Settings, pg_engine: Engine
) -> None:
    # Given a company with a budget of exactly 7 reservations of 1.10 EUR
    with sessionmaker(pg_engine).begin() as db:
        company_id = make_company(db).id

    # When four worker processes, each with its own engine, reserve five times each from the same moment
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as processes:
        taken = list(
            processes.map(
                reserve_in_a_process, [pg_settings.database_url] * 4, [company_id] * 4, [start_at] * 4
            )
        )

    # Then 7 of the 20 were granted, and the company's month holds exactly its budget
    assert sum(taken) == 7
    with sessionmaker(pg_engine)() as db:
        row = db.get(CompanyAISpend, (company_id, month_of(datetime.now(UTC))))
        assert row is not None
        assert row.reserved_eur + row.spent_eur == Decimal("7.70")


@pytest.mark.postgres
def test_racing_workers_never_overspend_and_the_rest_waits_with_budget_reached(
    pg_settings: Settings, ai_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given one company with 12 sessions and a budget for 5 of them at their worst case
    engine = create_engine(pg_settings.database_url)
    company_id, session_ids = _company_with_sessions(engine, 12, None)
    budget = _room_for(5, session_ids[0], ai_settings, batch=False)
    with sessionmaker(engine).begin() as db:
        set_budget(db, company_id, budget)

    # When four workers, each with its own connections, analyse three sessions each at the same time
    def worker(chunk: list[uuid.UUID]) -> AnalysisResult:
        own = create_engine(pg_settings.database_url)
        try:
            return _analyse(own, ai_settings, chunk)
        finally:
            own.dispose()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(worker, [session_ids[i : i + 3] for i in range(0, 12, 3)]))

    # Then at most the budget was billed, in the pipeline's ledger and at the emulator, and nothing is held
    completed = sum(result.completed for result in results)
    waiting = sum(result.waiting for result in results)
    assert completed + waiting == 12 and 1 <= completed <= 5
    assert _ledger_cost(engine, session_ids) <= budget
    assert len(emulator.ledger()) == completed
    spend = _spend(engine, company_id)
    assert spend.reserved_eur == 0 and spend.spent_eur <= budget
    # And the others wait, PENDING with the visible status "budget reached", their claim not counted
    rows = [row for row in _analysis_rows(engine, session_ids) if row.status is ProcessingStatus.PENDING]
    assert len(rows) == waiting
    assert all((row.error_message or "").startswith(BUDGET_REACHED) and row.attempts == 0 for row in rows)
    engine.dispose()


@pytest.mark.postgres
def test_what_waits_for_budget_goes_on_by_itself_after_a_raise(
    pg_engine: Engine, ai_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given a company whose budget holds two of its four sessions, analysed
    company_id, session_ids = _company_with_sessions(pg_engine, 4, None)
    budget = _room_for(2, session_ids[0], ai_settings, batch=False)
    with sessionmaker(pg_engine).begin() as db:
        set_budget(db, company_id, budget)
    first = _analyse(pg_engine, ai_settings, session_ids)
    assert (first.completed, first.waiting) == (2, 2)

    # When the budget is raised and the sweep runs
    with sessionmaker(pg_engine).begin() as db:
        set_budget(db, company_id, Decimal("25.00"))
    swept: list[uuid.UUID] = []
    sweep_sessions(pg_engine, ai_settings, swept.extend, grace=timedelta(0))
    second = _analyse(pg_engine, ai_settings, swept)

    # Then the sweep sent the two waiting sessions and they were analysed: all four once, none twice
    assert second.completed == 2
    assert all(row.status is ProcessingStatus.COMPLETED for row in _analysis_rows(pg_engine, session_ids))
    assert sorted(entry.session_id or "" for entry in emulator.ledger()) == sorted(map(str, session_ids))


@pytest.mark.postgres
def test_batch_requests_over_budget_stay_pending_and_the_reservation_is_settled_at_ingest(
    pg_engine: Engine, ai_settings: Settings, client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given a company whose budget holds three of its five queued requests at the Batch price
    company_id, session_ids = _company_with_sessions(pg_engine, 5, None)
    budget = _room_for(3, session_ids[0], ai_settings, batch=True)
    with sessionmaker(pg_engine).begin() as db:
        set_budget(db, company_id, budget)
    assert enqueue_for_batch(pg_engine, ai_settings, session_ids) == 5

    # When a submit tick and a check tick run
    for batch_id in plan_batches(pg_engine, ai_settings):
        submit_batch(pg_engine, client, batch_id, max_prompt_tokens=16_000)
    check_batches(pg_engine, ai_settings, client)

    # Then three were billed, their reservations replaced by their cost; two wait with "budget reached"
    assert len(emulator.ledger()) == 3
    spend = _spend(pg_engine, company_id)
    assert spend.reserved_eur == 0 and 0 < spend.spent_eur <= budget
    assert _ledger_cost(pg_engine, session_ids) <= budget
    with sessionmaker(pg_engine)() as db:
        pending = db.scalars(
            select(AIProcessingRequest.error_message).where(
                AIProcessingRequest.session_id.in_(session_ids),
                AIProcessingRequest.processing_status == AIRequestStatus.PENDING_BATCHING,
            )
        ).all()
    assert len(pending) == 2 and all((note or "").startswith(BUDGET_REACHED) for note in pending)
    # And the check tick exported the share of the budget used
    ratio = REGISTRY.get_sample_value("livedash_ai_budget_used_ratio", {"company": str(company_id)})
    assert ratio == pytest.approx(float(spend.spent_eur / budget))


def _rederive(engine: Engine, session_ids: list[uuid.UUID], *, changed: uuid.UUID | None = None) -> None:
    """What import processing does to re-derived sessions: AI analysis PENDING again (``changed`` edited)."""
    with sessionmaker(engine).begin() as db:
        apply_stage_changes(
            db,
            [
                StageChange(session_id, stage, ProcessingStatus.PENDING)
                for session_id in session_ids
                for stage in (ProcessingStage.AI_ANALYSIS, ProcessingStage.QUESTION_EXTRACTION)
            ],
            datetime.now(UTC),
        )
        if changed is not None:
            db.execute(
                update(Message)
                .where(Message.session_id == changed, Message.order == 0)
                .values(content="When is my holiday approved?")
            )


@pytest.mark.postgres
def test_a_session_derived_again_with_the_same_content_reuses_its_analysis_and_bills_nothing(
    pg_engine: Engine, ai_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given three analysed sessions, billed once each
    _, session_ids = _company_with_sessions(pg_engine, 3, None)
    assert _analyse(pg_engine, ai_settings, session_ids).completed == 3
    assert len(emulator.ledger()) == 3

    # When all three are derived again, one of them with an edited transcript, and analysed
    unchanged, edited = session_ids[:2], session_ids[2]
    _rederive(pg_engine, session_ids, changed=edited)
    result = _analyse(pg_engine, ai_settings, session_ids)

    # Then the unchanged two reuse their analysis: no new bill, no new request row; the edited one is billed
    assert (result.completed, result.reused) == (3, 2)
    ledger = emulator.ledger()
    assert len(ledger) == 4 and ledger[-1].session_id == str(edited)
    with sessionmaker(pg_engine)() as db:
        rows = db.scalar(select(func.count()).where(AIProcessingRequest.session_id.in_(unchanged)))
    assert rows == 2
    assert all(row.status is ProcessingStatus.COMPLETED for row in _analysis_rows(pg_engine, session_ids))


@pytest.mark.postgres
def test_a_changed_model_is_analysed_again(
    pg_engine: Engine, ai_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given an analysed session
    _, session_ids = _company_with_sessions(pg_engine, 1, None)
    _analyse(pg_engine, ai_settings, session_ids)

    # When it is derived again with the same content but the default model is now another one
    _rederive(pg_engine, session_ids)
    _analyse(pg_engine, ai_settings.model_copy(update={"openai_model": "gpt-4o-mini"}), session_ids)

    # Then it was billed again, with the new model
    assert [entry.model.startswith("gpt-4o-mini") for entry in emulator.ledger()] == [False, True]


@pytest.mark.postgres
def test_the_batch_path_reuses_an_unchanged_analysis_without_queueing_it(
    pg_engine: Engine, ai_settings: Settings, client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given two sessions analysed through the Batch API
    _, session_ids = _company_with_sessions(pg_engine, 2, None)
    assert enqueue_for_batch(pg_engine, ai_settings, session_ids) == 2
    for batch_id in plan_batches(pg_engine, ai_settings):
        submit_batch(pg_engine, client, batch_id, max_prompt_tokens=16_000)
    check_batches(pg_engine, ai_settings, client)
    assert len(emulator.ledger()) == 2

    # When both are derived again unchanged and handed to the Batch path
    _rederive(pg_engine, session_ids)
    queued = enqueue_for_batch(pg_engine, ai_settings, session_ids)

    # Then nothing is queued or billed, and both are complete again
    assert queued == 0
    assert plan_batches(pg_engine, ai_settings) == []
    assert len(emulator.ledger()) == 2
    assert all(row.status is ProcessingStatus.COMPLETED for row in _analysis_rows(pg_engine, session_ids))


@pytest.mark.postgres
@pytest.mark.parametrize("resumes_by", ["a raise", "the next month"])
def test_batch_requests_waiting_at_the_budget_go_on_after_a_raise_or_in_the_next_month(
    pg_engine: Engine, ai_settings: Settings, client: openai.OpenAI, emulator: OpenAIEmulator, resumes_by: str
) -> None:
    # Given a company whose budget held one of its three queued requests, the two others waiting
    company_id, session_ids = _company_with_sessions(pg_engine, 3, None)
    with sessionmaker(pg_engine).begin() as db:
        set_budget(db, company_id, _room_for(1, session_ids[0], ai_settings, batch=True))
    enqueue_for_batch(pg_engine, ai_settings, session_ids)
    for batch_id in plan_batches(pg_engine, ai_settings):
        submit_batch(pg_engine, client, batch_id, max_prompt_tokens=16_000)
    check_batches(pg_engine, ai_settings, client)
    assert len(emulator.ledger()) == 1

    # When the budget is raised, or a new month starts (this month's spend moved back to the last one)
    with sessionmaker(pg_engine).begin() as db:
        if resumes_by == "a raise":
            set_budget(db, company_id, Decimal("25.00"))
        else:
            db.execute(
                update(CompanyAISpend)
                .where(CompanyAISpend.company_id == company_id)
                .values(month=date(2000, 1, 1))
            )
    planned = plan_batches(pg_engine, ai_settings)
    for batch_id in planned:
        submit_batch(pg_engine, client, batch_id, max_prompt_tokens=16_000)
    check_batches(pg_engine, ai_settings, client)

    # Then, without anything else done, the waiting requests went into a new batch as far as the budget now
    # allows: both after the raise, one in the new month (its budget holds one); none was billed twice
    billed = [entry.session_id for entry in emulator.ledger()]
    assert len(planned) == 1
    assert len(billed) == len(set(billed)) == (3 if resumes_by == "a raise" else 2)
    completed = [
        row for row in _analysis_rows(pg_engine, session_ids) if row.status is ProcessingStatus.COMPLETED
    ]
    assert len(completed) == len(billed)
