"""The synchronous AI analysis: chat completions through the real openai SDK against the emulator over HTTP,
every answer validated, applied once, and every call recorded with its cost. Real PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import sessionmaker

from pipeline.analysis import PromptMessage, build_messages, fit_transcript
from pipeline.analysis.openai_calls import openai_client
from pipeline.db.enums import AIRequestStatus, ProcessingStage, ProcessingStatus
from pipeline.db.models import (
    AIModel,
    AIProcessingRequest,
    ChatSession,
    Company,
    CompanyAIModel,
    Message,
    Question,
    SessionProcessingStatus,
    SessionQuestion,
)
from pipeline.db.types import utcnow
from pipeline.devtools.openai_emulator import AnswerFault, Knobs, OpenAIEmulator, analyse_conversation
from pipeline.settings import Settings
from pipeline.stages.session_analysis import AnalysisResult, analyze_sessions
from pipeline.stages.session_sweep import SWEEP_GRACE, sweep_sessions
from tests.factories import make_analysable_session, make_company

CHATS = [
    [
        ("user", "Hoi, wanneer staat mijn rooster voor volgende week online?"),
        ("assistant", "Het rooster staat vrijdag in de app."),
        ("user", "Dank je, dat is fijn!"),
    ],
    [
        ("user", "I want to speak to a manager about my salary, it is wrong again!"),
        ("assistant", "Please contact HR at hr@acme.example."),
        ("user", "Why was I paid less this month?"),
    ],
    [("user", "Wie bekomme ich einen neuen Mitarbeiterausweis?"), ("assistant", "Beim Empfang.")],
]


@pytest.fixture(scope="module")
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as running:
        yield running


@pytest.fixture
def ai_settings(pg_settings: Settings, emulator: OpenAIEmulator) -> Settings:
    emulator.reset()
    emulator.knobs = Knobs(retry_after=0.05)
    return pg_settings.model_copy(
        update={
            "openai_base_url": emulator.url,
            "openai_max_attempts": 3,
            "session_processing_concurrency": 4,
        }
    )


def _sessions(engine: Engine, chats: list[list[tuple[str, str]]] = CHATS) -> list[uuid.UUID]:
    with sessionmaker(engine).begin() as db:
        company = make_company(db)
        return [make_analysable_session(db, company, turns).id for turns in chats]


def _analyse(engine: Engine, settings: Settings, session_ids: list[uuid.UUID]) -> AnalysisResult:
    with (
        openai_client(settings) as client,
        ThreadPoolExecutor(max_workers=settings.session_processing_concurrency) as calls,
    ):
        return analyze_sessions(engine, settings, session_ids, client=client, calls=calls)


def _expected(engine: Engine, session_id: uuid.UUID) -> dict[str, object]:
    """What the emulator answers for this session: computed from the same prompt the pipeline sends."""
    with sessionmaker(engine)() as db:
        rows = db.scalars(
            select(Message).where(Message.session_id == session_id).order_by(Message.order)
        ).all()
        messages = [PromptMessage.from_row(row) for row in rows]
        prompt = build_messages(str(session_id), fit_transcript(messages, max_prompt_tokens=16_000))
    return analyse_conversation(prompt[1]["content"])


def _stage(engine: Engine, session_id: uuid.UUID, stage: ProcessingStage) -> SessionProcessingStatus:
    with sessionmaker(engine)() as db:
        return db.scalars(
            select(SessionProcessingStatus).where(
                SessionProcessingStatus.session_id == session_id, SessionProcessingStatus.stage == stage
            )
        ).one()


def _requests(engine: Engine, session_id: uuid.UUID) -> list[AIProcessingRequest]:
    with sessionmaker(engine)() as db:
        return list(
            db.scalars(
                select(AIProcessingRequest)
                .where(AIProcessingRequest.session_id == session_id)
                .order_by(AIProcessingRequest.attempts)
            )
        )


def _questions(engine: Engine, session_id: uuid.UUID) -> list[str]:
    with sessionmaker(engine)() as db:
        return list(
            db.scalars(
                select(Question.content)
                .join(SessionQuestion)
                .where(SessionQuestion.session_id == session_id)
                .order_by(SessionQuestion.order)
            )
        )


@pytest.mark.postgres
def test_each_session_is_analysed_applied_and_costed(
    pg_engine: Engine, ai_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given three sessions with messages, in Dutch, English and German
    session_ids = _sessions(pg_engine)

    # When they are analysed
    result = _analyse(pg_engine, ai_settings, session_ids)

    # Then each session carries exactly the validated answer, and both AI stages are complete
    assert (result.claimed, result.completed, result.failed) == (3, 3, 0)
    for session_id in session_ids:
        expected = _expected(pg_engine, session_id)
        with sessionmaker(pg_engine)() as db:
            session = db.get(ChatSession, session_id)
            assert session is not None
        assert (
            session.language,
            session.sentiment,
            session.category,
            session.escalated,
            session.forwarded_hr,
            session.summary,
        ) == (
            expected["language"],
            expected["sentiment"],
            expected["category"],
            expected["escalated"],
            expected["forwarded_hr"],
            expected["summary"],
        )
        assert _questions(pg_engine, session_id) == expected["questions"]
        assert _stage(pg_engine, session_id, ProcessingStage.AI_ANALYSIS).status is ProcessingStatus.COMPLETED
        assert (
            _stage(pg_engine, session_id, ProcessingStage.QUESTION_EXTRACTION).status
            is ProcessingStatus.COMPLETED
        )
        # And one request row holds the tokens and the cost at gpt-4o's seeded price
        [request] = _requests(pg_engine, session_id)
        assert request.success and request.processing_status is AIRequestStatus.PROCESSING_COMPLETE
        assert request.model == "gpt-4o" and request.cost_known
        assert request.openai_request_id and request.openai_request_id.startswith("chatcmpl-")
        assert request.prompt_tokens > 0 and request.completion_tokens > 0
        assert request.total_cost_eur == pytest.approx(
            (request.prompt_tokens * 0.0000025 + request.completion_tokens * 0.00001)
            * ai_settings.eur_per_usd
        )
    # And the emulator billed exactly one answer per session
    assert sorted((entry.session_id for entry in emulator.ledger()), key=str) == sorted(map(str, session_ids))


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("invalid_json", "invalid answer: invalid JSON"),
        ("schema_violation", "invalid answer: "),
        ("refusal", "invalid answer: model refused"),
        ("wrong_session_id", "invalid answer: answer is for session"),
    ],
)
def test_a_malformed_answer_fails_its_session_and_nothing_unvalidated_is_stored(
    pg_engine: Engine, ai_settings: Settings, emulator: OpenAIEmulator, fault: AnswerFault, reason: str
) -> None:
    # Given two sessions, the first of which gets a malformed answer
    bad, good = _sessions(pg_engine, CHATS[:2])
    emulator.knobs.session_faults = {str(bad): fault}

    # When both are analysed
    result = _analyse(pg_engine, ai_settings, [bad, good])

    # Then the bad one is FAILED with the reason and its session keeps no AI field; the good one is applied
    assert (result.completed, result.failed) == (1, 1)
    analysis = _stage(pg_engine, bad, ProcessingStage.AI_ANALYSIS)
    assert analysis.status is ProcessingStatus.FAILED
    assert (analysis.error_message or "").startswith(reason), analysis.error_message
    with sessionmaker(pg_engine)() as db:
        session = db.get(ChatSession, bad)
        assert session is not None and (session.sentiment, session.category, session.summary) == (
            None,
            None,
            None,
        )
    assert _questions(pg_engine, bad) == []
    # And the answer was paid for, so its cost is recorded with the failure
    [request] = _requests(pg_engine, bad)
    assert not request.success and request.prompt_tokens > 0 and request.total_cost_eur > 0
    assert _stage(pg_engine, good, ProcessingStage.AI_ANALYSIS).status is ProcessingStatus.COMPLETED


@pytest.mark.postgres
def test_rate_limits_are_retried_after_retry_after_and_every_attempt_is_recorded(
    pg_engine: Engine, ai_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given an API that answers every second call with 429 and Retry-After of 0.3 s
    session_ids = _sessions(pg_engine)
    emulator.knobs.rate_429 = 0.5
    emulator.knobs.retry_after = 0.3
    settings = ai_settings.model_copy(update={"session_processing_concurrency": 1})

    # When the sessions are analysed one call at a time
    started = time.monotonic()
    result = _analyse(pg_engine, settings, session_ids)
    elapsed = time.monotonic() - started

    # Then every session is analysed, after waiting as the server asked
    assert result.completed == 3
    assert elapsed >= 0.3
    # And each 429 is on record as a failed attempt, while each answer was billed exactly once
    attempts = [request for session_id in session_ids for request in _requests(pg_engine, session_id)]
    failed = [request for request in attempts if not request.success]
    assert failed and all("HTTP 429" in (request.error_message or "") for request in failed)
    assert sum(1 for request in attempts if request.success) == 3
    assert len(emulator.ledger()) == 3


@pytest.mark.postgres
def test_server_errors_stop_at_the_attempt_cap(
    pg_engine: Engine, ai_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given an API that always fails with 500
    [session_id] = _sessions(pg_engine, CHATS[:1])
    emulator.knobs.rate_500 = 1.0

    # When the session is analysed with 3 attempts allowed
    result = _analyse(pg_engine, ai_settings, [session_id])

    # Then it is FAILED after exactly 3 calls, each recorded, and nothing was billed
    assert result.failed == 1
    analysis = _stage(pg_engine, session_id, ProcessingStage.AI_ANALYSIS)
    assert analysis.status is ProcessingStatus.FAILED
    assert "gave up after 3 attempts" in (analysis.error_message or "")
    assert [request.attempts for request in _requests(pg_engine, session_id)] == [1, 2, 3]
    assert emulator.ledger() == []


@pytest.mark.postgres
def test_the_company_model_is_used_and_an_unpriced_model_is_flagged_not_invented(
    pg_engine: Engine, ai_settings: Settings
) -> None:
    # Given one company whose default model is gpt-4o-mini and one whose default has no price at all
    with sessionmaker(pg_engine).begin() as db:
        mini, unpriced = make_company(db, name="Mini"), make_company(db, name="Unpriced")
        unknown = AIModel(name="o9-preview", provider="openai")
        db.add(unknown)
        db.flush()
        mini_model = db.scalars(select(AIModel).where(AIModel.name == "gpt-4o-mini")).one()
        db.add_all(
            [
                CompanyAIModel(company_id=mini.id, ai_model_id=mini_model.id, is_default=True),
                CompanyAIModel(company_id=unpriced.id, ai_model_id=unknown.id, is_default=True),
            ]
        )
        cheap = make_analysable_session(db, mini, CHATS[0]).id
        mystery = make_analysable_session(db, unpriced, CHATS[1]).id
    unknown_before = (
        REGISTRY.get_sample_value("livedash_openai_unknown_price_total", {"model": "o9-preview"}) or 0
    )

    # When both are analysed
    _analyse(pg_engine, ai_settings, [cheap, mystery])

    # Then each request uses its company's model; gpt-4o-mini at its price, o9-preview with tokens but no cost
    [priced] = _requests(pg_engine, cheap)
    assert priced.model == "gpt-4o-mini" and priced.cost_known
    assert priced.prompt_token_cost == 0.00000015 and priced.completion_token_cost == 0.0000006
    [unpriced_request] = _requests(pg_engine, mystery)
    assert unpriced_request.model == "o9-preview" and not unpriced_request.cost_known
    assert unpriced_request.prompt_tokens > 0 and unpriced_request.total_cost_eur == 0
    assert (
        REGISTRY.get_sample_value("livedash_openai_unknown_price_total", {"model": "o9-preview"})
        == unknown_before + 1
    )


@pytest.mark.postgres
def test_a_redelivered_chunk_pays_nothing_and_a_reanalysis_replaces(
    pg_engine: Engine, ai_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given analysed sessions
    session_ids = _sessions(pg_engine)
    _analyse(pg_engine, ai_settings, session_ids)

    # When the same message is delivered again
    again = _analyse(pg_engine, ai_settings, session_ids)

    # Then nothing is claimed and OpenAI is not called again
    assert again.claimed == 0
    assert len(emulator.ledger()) == 3

    # When the sessions are re-derived (AI_ANALYSIS back to PENDING) and analysed again
    with sessionmaker(pg_engine).begin() as db:
        db.execute(
            update(SessionProcessingStatus)
            .where(SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS)
            .values(status=ProcessingStatus.PENDING)
        )
    _analyse(pg_engine, ai_settings, session_ids)

    # Then their questions are replaced, not duplicated, and the question texts stay shared
    for session_id in session_ids:
        assert _questions(pg_engine, session_id) == _expected(pg_engine, session_id)["questions"]
    with sessionmaker(pg_engine)() as db:
        assert db.scalar(select(func.count()).select_from(Question)) == db.scalar(
            select(func.count(func.distinct(Question.content)))
        )


@pytest.mark.postgres
def test_the_sweep_sends_waiting_sessions_with_messages_and_never_those_without(
    pg_engine: Engine, ai_settings: Settings
) -> None:
    # Given two analysable sessions, and one whose analysis was skipped for lack of messages
    waiting = _sessions(pg_engine, CHATS[:2])
    with sessionmaker(pg_engine).begin() as db:
        skipped = make_analysable_session(db, db.scalars(select(Company)).first(), []).id  # type: ignore[arg-type]
        db.execute(
            update(SessionProcessingStatus)
            .where(
                SessionProcessingStatus.session_id == skipped,
                SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
            )
            .values(status=ProcessingStatus.SKIPPED)
        )

    # When the sweep runs now, and again after the grace period
    now_sent: list[uuid.UUID] = []
    sweep_sessions(pg_engine, ai_settings, now_sent.extend)
    later_sent: list[uuid.UUID] = []
    result = sweep_sessions(pg_engine, ai_settings, later_sent.extend, now=utcnow() + SWEEP_GRACE * 2)

    # Then only the sessions waiting longer than the grace, with messages, are sent
    assert now_sent == []
    assert sorted(later_sent) == sorted(waiting)
    assert skipped not in later_sent
    assert result.lag_seconds >= SWEEP_GRACE.total_seconds()


@pytest.mark.postgres
def test_a_session_that_cannot_be_prompted_fails_alone_and_costs_nothing(
    pg_engine: Engine, ai_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given a chunk in which one session's AI analysis is pending although it has no messages at all
    good = _sessions(pg_engine, CHATS[:1])
    empty = _sessions(pg_engine, [[]])

    # When the chunk is analysed
    result = _analyse(pg_engine, ai_settings, [*good, *empty])

    # Then that session fails with the reason, without a call, and the other one is analysed as usual
    assert (result.completed, result.failed) == (1, 1)
    analysis = _stage(pg_engine, empty[0], ProcessingStage.AI_ANALYSIS)
    assert analysis.status is ProcessingStatus.FAILED
    assert (analysis.error_message or "").startswith("cannot build the prompt")
    assert [entry.session_id for entry in emulator.ledger()] == [str(good[0])]


@pytest.mark.postgres
def test_a_transcript_too_long_for_the_prompt_is_cut_and_the_cut_recorded_on_the_session(
    pg_engine: Engine, ai_settings: Settings
) -> None:
    # Given a prompt budget of 2,000 tokens, a session of 3,000 messages (about 60,000 estimated tokens),
    # and a short one
    settings = ai_settings.model_copy(update={"openai_max_prompt_tokens": 2_000})
    long_chat = [("user", f"Question {number}: how many vacation days are left?") for number in range(3_000)]
    long_id, short_id = _sessions(pg_engine, [long_chat, CHATS[0]])

    # When both are analysed
    result = _analyse(pg_engine, settings, [long_id, short_id])

    # Then both are analysed, the long one from a prompt within the budget
    assert result.completed == 2
    [request] = _requests(pg_engine, long_id)
    assert request.prompt_tokens is not None and request.prompt_tokens <= 2_000
    # And the long one records what its prompt left out; the short one sent everything
    with sessionmaker(pg_engine)() as db:
        long_session, short_session = db.get_one(ChatSession, long_id), db.get_one(ChatSession, short_id)
    assert long_session.prompt_truncation is not None
    assert long_session.prompt_truncation.startswith("prompt limited to about 2000 tokens: the first ")
    assert long_session.prompt_truncation.endswith(" of 3000 messages sent")
    assert short_session.prompt_truncation is None
