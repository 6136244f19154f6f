"""The synchronous AI analysis: chat completions through the real openai SDK against the emulator over HTTP,
every answer validated, applied once, and every call recorded with its cost. Real PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, Table, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.analysis import PromptMessage, build_messages, fit_transcript, openai_calls
from pipeline.analysis.openai_calls import openai_client
from pipeline.db.bulk import bulk_insert
from pipeline.db.enums import AIRequestStatus, ProcessingStage, ProcessingStatus
from pipeline.db.models import (
    AIModel,
    AIProcessingRequest,
    ChatSession,
    Company,
    CompanyAIModel,
    CompanyAISpend,
    Message,
    Question,
    SessionProcessingStatus,
    SessionQuestion,
)
from pipeline.db.types import utcnow
from pipeline.devtools.openai_emulator import AnswerFault, Knobs, OpenAIEmulator, analyse_conversation
from pipeline.settings import Settings
from pipeline.stages import session_analysis
from pipeline.stages.budgets import to_eur
from pipeline.stages.session_analysis import AnalysisResult, analyze_sessions
from pipeline.stages.session_sweep import SWEEP_GRACE, sweep_sessions
from tests.factories import make_analysable_session, make_company

T = TypeVar("T")
#: Claims of a session's analysis before it is given up (the stage's ``_MAX_CLAIMS``).
MAX_CLAIMS = 5

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
def ai_settings(pg_settings: Settings, emulator: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # A 500 carries no Retry-After, so a call backs off 1 s, then 2 s: 15 s of sleep for one session taken
    # to the claim cap. The waits themselves are tested in tests/analysis/test_call_retries.py.
    monkeypatch.setattr(openai_calls, "_BASE_BACKOFF_SECONDS", 0.01)
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
def test_server_errors_past_the_attempt_cap_send_the_session_back_until_the_claim_cap(
    pg_engine: Engine, ai_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given an API that always fails with 500
    [session_id] = _sessions(pg_engine, CHATS[:1])
    emulator.knobs.rate_500 = 1.0

    # When the session is analysed with 3 attempts allowed
    result = _analyse(pg_engine, ai_settings, [session_id])

    # Then after exactly 3 calls, each recorded, it is back to PENDING with the reason, not FAILED
    analysis = _stage(pg_engine, session_id, ProcessingStage.AI_ANALYSIS)
    assert analysis.status is ProcessingStatus.PENDING
    assert (result.failed, result.retrying) == (0, 1)
    assert analysis.lease_expires_at is None and analysis.leased_by is None
    assert "will retry: HTTP 500" in (analysis.error_message or "")
    assert "gave up after 3 attempts" in (analysis.error_message or "")
    assert [request.attempts for request in _requests(pg_engine, session_id)] == [1, 2, 3]
    assert emulator.ledger() == []

    # When it keeps failing on every claim up to the claim cap
    for _ in range(MAX_CLAIMS - 1):
        result = _analyse(pg_engine, ai_settings, [session_id])

    # Then the last claim fails it for good, with the API's reason, and nothing was billed
    assert (result.failed, result.retrying) == (1, 0)
    analysis = _stage(pg_engine, session_id, ProcessingStage.AI_ANALYSIS)
    assert analysis.status is ProcessingStatus.FAILED
    assert f"gave up after {MAX_CLAIMS} claims" in (analysis.error_message or "")
    assert "HTTP 500" in (analysis.error_message or "")
    assert len(_requests(pg_engine, session_id)) == 3 * MAX_CLAIMS
    assert emulator.ledger() == []


@pytest.mark.postgres
def test_an_outage_longer_than_the_retries_fails_nothing_and_the_sweep_analyses_after_it(
    pg_engine: Engine, ai_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given three sessions and an API down (every request 500) for longer than the call's attempts
    session_ids = _sessions(pg_engine)
    emulator.knobs.outage = "server_error"

    # When they are analysed during the outage
    result = _analyse(pg_engine, ai_settings, session_ids)

    # Then none is FAILED: all are PENDING again, unleased, nothing billed and nothing left reserved
    for session_id in session_ids:
        analysis = _stage(pg_engine, session_id, ProcessingStage.AI_ANALYSIS)
        assert analysis.status is ProcessingStatus.PENDING and analysis.leased_by is None
    assert (result.completed, result.failed, result.retrying) == (0, 0, 3)
    assert emulator.ledger() == []
    with sessionmaker(pg_engine)() as db:
        assert db.scalar(select(func.sum(CompanyAISpend.reserved_eur))) == 0

    # When the API is back and the sweep sends what waits
    emulator.knobs.outage = None
    sent: list[uuid.UUID] = []
    sweep_sessions(pg_engine, ai_settings, sent.extend, now=utcnow() + SWEEP_GRACE)
    assert sorted(sent) == sorted(session_ids)
    result = _analyse(pg_engine, ai_settings, sent)

    # Then every session is analysed, each billed once
    assert (result.completed, result.failed) == (3, 0)
    for session_id in session_ids:
        assert _stage(pg_engine, session_id, ProcessingStage.AI_ANALYSIS).status is ProcessingStatus.COMPLETED
    assert sorted(entry.session_id or "" for entry in emulator.ledger()) == sorted(map(str, session_ids))


class _Crash(BaseException):
    """The worker dying: nothing of the pipeline catches it."""


class _CrashingCalls(ThreadPoolExecutor):
    """A call pool whose process dies when asked for its call number ``calls + 1``."""

    def __init__(self, calls: int) -> None:
        super().__init__(max_workers=4)
        self._left = calls

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if self._left == 0:
            raise _Crash
        self._left -= 1
        return super().submit(fn, *args, **kwargs)


@pytest.mark.postgres
def test_a_worker_dying_mid_chunk_keeps_the_answers_it_paid_for_and_a_rerun_bills_only_the_rest(
    pg_engine: Engine, ai_settings: Settings, emulator: OpenAIEmulator
) -> None:
    # Given three sessions, and a worker that dies after two of the chunk's calls were made
    session_ids = _sessions(pg_engine)
    with openai_client(ai_settings) as client, _CrashingCalls(2) as calls, pytest.raises(_Crash):
        analyze_sessions(pg_engine, ai_settings, session_ids, client=client, calls=calls)

    # Then the two answers paid for are stored, applied and settled in the budget
    assert len(emulator.ledger()) == 2
    answered = [
        s
        for s in session_ids
        if _stage(pg_engine, s, ProcessingStage.AI_ANALYSIS).status is ProcessingStatus.COMPLETED
    ]
    assert len(answered) == 2
    assert all(len(_requests(pg_engine, session_id)) == 1 for session_id in answered)

    # When the third one's lease runs out and the chunk is delivered again
    with sessionmaker(pg_engine).begin() as db:
        db.execute(
            update(SessionProcessingStatus)
            .where(SessionProcessingStatus.status == ProcessingStatus.IN_PROGRESS)
            .values(lease_expires_at=utcnow())
        )
    result = _analyse(pg_engine, ai_settings, session_ids)

    # Then only the rest is called: each session billed exactly once, and the spend is what was billed
    assert (result.claimed, result.completed) == (1, 1)
    assert sorted(entry.session_id or "" for entry in emulator.ledger()) == sorted(map(str, session_ids))
    with sessionmaker(pg_engine)() as db:
        costs = db.scalar(select(func.sum(AIProcessingRequest.total_cost_eur)))
        assert costs is not None and costs > 0
        assert db.scalar(select(func.sum(CompanyAISpend.spent_eur))) == to_eur(costs)


@pytest.mark.postgres
def test_an_answer_arriving_while_the_database_fails_is_written_once_it_answers(
    pg_engine: Engine, ai_settings: Settings, emulator: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a session, and a database that fails the first two writes of its answer as if it were down
    [session_id] = _sessions(pg_engine, CHATS[:1])
    failures = iter([True, True])

    def bulk_insert_while_down(db: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        if next(failures, False):
            raise OperationalError("COPY", {}, psycopg.OperationalError("connection refused"))
        bulk_insert(db, table, rows)

    monkeypatch.setattr(session_analysis, "bulk_insert", bulk_insert_while_down)
    monkeypatch.setattr(session_analysis, "_RECORD_BACKOFF_SECONDS", 0.01, raising=False)

    # When it is analysed
    result = _analyse(pg_engine, ai_settings, [session_id])

    # Then the answer paid for is stored and applied once the database answers, billed once
    assert result.completed == 1
    assert _stage(pg_engine, session_id, ProcessingStage.AI_ANALYSIS).status is ProcessingStatus.COMPLETED
    assert [request.success for request in _requests(pg_engine, session_id)] == [True]
    assert len(emulator.ledger()) == 1


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
