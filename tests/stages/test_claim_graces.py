"""``CLAIM_LEASE_GRACE_MS`` and ``SWEEP_GRACE_MS``: the graces a deployment's claims and sweeps use (the
chaos runs shorten them so that a killed worker's items come free within CI's budget)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import sessionmaker

from pipeline.analysis.openai_calls import openai_client
from pipeline.db.enums import ProcessingStage, ProcessingStatus
from pipeline.db.models import SessionProcessingStatus
from pipeline.db.types import utcnow
from pipeline.scheduling.jobs import ActorDefinition
from pipeline.settings import Settings
from pipeline.stages import entry_points, session_analysis
from pipeline.stages.runtime import StageRuntime
from tests.factories import make_analysable_session, make_company

T = TypeVar("T")
TURNS = [("user", "When is my schedule for next week online?"), ("assistant", "On Friday, in the app.")]
AI = SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS


def _waiting_session(engine: Engine, waited: timedelta) -> uuid.UUID:
    """An analysable session whose AI_ANALYSIS has been PENDING for ``waited``."""
    with sessionmaker(engine).begin() as db:
        session_id = make_analysable_session(db, make_company(db), TURNS).id
        db.execute(
            update(SessionProcessingStatus)
            .where(AI, SessionProcessingStatus.session_id == session_id)
            .values(updated_at=utcnow() - waited)
        )
    return session_id


def _sweep_on_a_worker(engine: Engine, settings: Settings) -> list[list[str]]:
    """The chunks of session ids a worker's session sweep sends."""
    sent: list[list[str]] = []

    def record(runtime: StageRuntime, actor: ActorDefinition, args: tuple[Any, ...]) -> None:
        sent.append(list(args[0]))

    runtime = StageRuntime(settings, dispatch=record, engine=engine)
    try:
        entry_points.session_processing_sweep(runtime)
    finally:
        runtime.close()
    return sent


@pytest.mark.postgres
def test_a_workers_sweep_waits_the_configured_grace_before_sending_a_pending_session_again(
    pg_engine: Engine, pg_settings: Settings
) -> None:
    # Given a session whose analysis has waited 10 s for its message
    session_id = _waiting_session(pg_engine, timedelta(seconds=10))

    # When a worker's sweep runs with the default grace (2 min), then with a grace of 5 s
    with_the_default = _sweep_on_a_worker(pg_engine, pg_settings)
    with_5_s = _sweep_on_a_worker(pg_engine, pg_settings.model_copy(update={"sweep_grace_ms": 5_000}))

    # Then only the shorter grace takes its message for lost and sends the session again
    assert with_the_default == []
    assert with_5_s == [[str(session_id)]]


class _Crash(BaseException):
    """The worker dying before its first call: nothing of the pipeline catches it."""


class _DyingCalls(ThreadPoolExecutor):
    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        raise _Crash


@pytest.mark.postgres
def test_an_analysis_claim_is_leased_for_the_time_limit_plus_the_configured_grace(
    pg_engine: Engine, pg_settings: Settings
) -> None:
    # Given a session ready for analysis, and a deployment with a 10 s time limit and a 15 s lease grace
    session_id = _waiting_session(pg_engine, timedelta(0))
    settings = pg_settings.model_copy(update={"actor_time_limit_ms": 10_000, "claim_lease_grace_ms": 15_000})

    # When a worker claims it and dies before calling
    with openai_client(settings) as client, _DyingCalls(max_workers=1) as calls, pytest.raises(_Crash):
        session_analysis.analyze_sessions(pg_engine, settings, [session_id], client=client, calls=calls)

    # Then the session is leased for 25 s from its claim: another worker may take it over after that
    with sessionmaker(pg_engine)() as db:
        row = db.scalars(
            select(SessionProcessingStatus).where(AI, SessionProcessingStatus.session_id == session_id)
        ).one()
    assert row.status is ProcessingStatus.IN_PROGRESS
    assert row.started_at is not None and row.lease_expires_at is not None
    assert row.lease_expires_at - row.started_at == timedelta(seconds=25)


@pytest.mark.parametrize("grace_ms", [120_000, 20_000, 1_000])
def test_a_paid_answer_is_written_for_less_than_the_lease_grace_while_the_database_is_down(
    pg_settings: Settings, grace_ms: int
) -> None:
    # Given a deployment's lease grace
    settings = pg_settings.model_copy(update={"claim_lease_grace_ms": grace_ms})

    # When the sync path decides how long to keep trying to write an answer it paid for
    patience = session_analysis._record_patience(settings)

    # Then it gives up before the lease may pass to another worker, who would pay for the answer again
    assert 0 < patience < settings.claim_lease_grace.total_seconds()
