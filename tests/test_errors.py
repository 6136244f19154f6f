"""The one error tree: every stage error has a kind, and the actors' retry decision reads only the kind."""

from __future__ import annotations

import uuid

import pytest

from pipeline.analysis.openai_calls import CallFailed, PermanentCallFailure, TransientCallFailure
from pipeline.analysis.schema import InvalidAnalysis
from pipeline.db.secrets import SecretKeyMissing, WrongSecretKey
from pipeline.errors import PermanentError, PipelineError, TransientError, is_transient, should_retry
from pipeline.settings import get_settings
from pipeline.sources.http_fetch import (
    FetchError,
    FetchTimeout,
    PermanentFetchError,
    ResponseTooLarge,
    TransientFetchError,
)
from pipeline.sources.timestamps import TimestampError
from pipeline.sources.urls import RefusedUrl
from pipeline.stages.actors import should_retry as actor_should_retry
from pipeline.stages.csv_claims import ImportCapacityReached
from pipeline.stages.csv_import import (
    CsvImportFailed,
    PermanentCsvImportFailure,
    TransientCsvImportFailure,
)

TRANSIENT: list[PipelineError] = [
    TransientFetchError("HTTP 503 Service Unavailable", status_code=503),
    FetchTimeout("read timeout after 30.0s"),
    TransientCsvImportFailure(uuid.uuid4(), "HTTP 503 Service Unavailable"),
    ImportCapacityReached(4),
    TransientCallFailure("HTTP 500: boom (gave up after 3 attempts)"),
]

PERMANENT: list[PipelineError] = [
    PermanentFetchError("HTTP 404 Not Found", status_code=404),
    ResponseTooLarge("body exceeds 10 bytes"),
    PermanentCsvImportFailure(uuid.uuid4(), "HTTP 401 Unauthorized"),
    PermanentCallFailure("HTTP 400: bad request"),
    InvalidAnalysis("summary too short"),
    RefusedUrl("http://127.0.0.1/", "a loopback address"),
    TimestampError("32.13.2025", "month 13 out of range"),
    SecretKeyMissing(),
    WrongSecretKey(),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda error: type(error).__name__)
def test_transient_errors_are_retried_up_to_their_budget(error: PipelineError) -> None:
    # Given a transient error of any stage
    # Then it is a pipeline error of the transient kind, and nothing else
    assert isinstance(error, TransientError)
    assert not isinstance(error, PermanentError)
    assert is_transient(error)
    # And it is retried until its budget (its own, or the actors' default) is spent
    budget = error.max_retries if error.max_retries is not None else 5
    assert should_retry(budget - 1, error, max_retries=5)
    assert not should_retry(budget, error, max_retries=5)


@pytest.mark.parametrize("error", PERMANENT, ids=lambda error: type(error).__name__)
def test_permanent_errors_are_never_retried(error: PipelineError) -> None:
    # Given a permanent error of any stage
    # Then it is a pipeline error of the permanent kind
    assert isinstance(error, PermanentError)
    assert not is_transient(error)
    # And no retry is ever made
    assert not should_retry(0, error, max_retries=5)


def test_errors_outside_the_tree_get_the_default_budget() -> None:
    # Given a bug or an outage: not a pipeline error
    error = RuntimeError("database is gone")
    # Then it is not transient, yet retried like Dramatiq does by default
    assert not is_transient(error)
    assert not is_transient(None)
    assert should_retry(4, error, max_retries=5)
    assert not should_retry(5, error, max_retries=5)


def test_each_stage_base_sits_under_the_pipeline_error() -> None:
    for base in (FetchError, CsvImportFailed, CallFailed):
        assert issubclass(base, PipelineError)
    # Errors that callers catch as ValueError/RuntimeError still are
    assert issubclass(RefusedUrl, ValueError)
    assert issubclass(WrongSecretKey, RuntimeError)


def test_the_actors_retry_with_the_configured_cap() -> None:
    # Given the actors' retry decision, with ACTOR_MAX_RETRIES from the settings
    settings = get_settings()
    cap = settings.actor_max_retries
    # Then an unknown failure retries up to it, a permanent one never
    assert actor_should_retry(settings, cap - 1, RuntimeError("boom"))
    assert not actor_should_retry(settings, cap, RuntimeError("boom"))
    assert not actor_should_retry(settings, 0, PermanentCallFailure("HTTP 400"))


def test_every_work_actor_decides_its_retries_by_the_error_tree() -> None:
    # Given every actor the pipeline declares
    from pipeline.actors import broker

    actors = [broker.get_actor(name) for name in broker.get_declared_actors()]
    # Then the ticks are never retried, and every other actor retries by the kind of its error
    work = [actor for actor in actors if actor.options.get("max_retries") != 0]
    assert work
    decisions = {actor.actor_name: getattr(actor.options.get("retry_when"), "func", None) for actor in work}
    assert decisions == {actor.actor_name: actor_should_retry for actor in work}
