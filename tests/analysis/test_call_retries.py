"""One chat completion's retries against the OpenAI emulator over HTTP: how long each wait is, and when the
call gives up (``pipeline.analysis.openai_calls``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.analysis.openai_calls import (
    Attempt,
    PermanentCallFailure,
    TransientCallFailure,
    complete_with_retries,
    openai_client,
)
from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator
from pipeline.settings import Settings, load_settings

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture(scope="module")
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as running:
        yield running


def _settings(emulator: OpenAIEmulator, attempts: int) -> Settings:
    return load_settings(openai_base_url=emulator.url, openai_max_attempts=attempts)


def _call(emulator: OpenAIEmulator, knobs: Knobs, attempts: int) -> tuple[list[float], list[Attempt]]:
    """Call once with ``knobs``; the waits asked for and the failed attempts reported (the call must fail)."""
    emulator.reset()
    emulator.knobs = knobs
    settings = _settings(emulator, attempts)
    waits: list[float] = []
    failed: list[Attempt] = []
    with openai_client(settings) as client, pytest.raises(TransientCallFailure) as raised:
        complete_with_retries(client, BODY, settings, on_attempt_failed=failed.append, sleep=waits.append)
    assert f"gave up after {attempts} attempts" in raised.value.reason
    return waits, failed


def test_server_errors_are_retried_with_a_doubling_backoff(emulator: OpenAIEmulator) -> None:
    # Given an API that answers every call 500, without Retry-After
    # When a call is allowed 4 attempts
    waits, failed = _call(emulator, Knobs(rate_500=1.0), attempts=4)

    # Then it waits 1, 2 and 4 s between them and reports each failed attempt with the status
    assert waits == [1.0, 2.0, 4.0]
    assert [(attempt.number, attempt.retry_after) for attempt in failed] == [(n, None) for n in (1, 2, 3, 4)]
    assert all("HTTP 500" in attempt.error for attempt in failed)


def test_rate_limits_wait_as_long_as_retry_after_asks(emulator: OpenAIEmulator) -> None:
    # Given an API that answers every call 429 with a Retry-After of 0.25 s
    # When a call is allowed 3 attempts
    waits, failed = _call(emulator, Knobs(rate_429=1.0, retry_after=0.25), attempts=3)

    # Then it waits what the server asked, not its own backoff
    assert waits == [0.25, 0.25]
    assert [attempt.retry_after for attempt in failed] == [0.25, 0.25, 0.25]


def test_a_refused_request_is_not_retried(emulator: OpenAIEmulator) -> None:
    # Given a request the API refuses (no messages)
    emulator.reset()
    emulator.knobs = Knobs()
    settings = _settings(emulator, attempts=3)
    failed: list[Attempt] = []
    waits: list[float] = []

    # When it is called
    with openai_client(settings) as client, pytest.raises(PermanentCallFailure):
        complete_with_retries(
            client,
            {"model": BODY["model"], "messages": []},
            settings,
            on_attempt_failed=failed.append,
            sleep=waits.append,
        )

    # Then it failed once, without waiting
    assert [attempt.number for attempt in failed] == [1]
    assert waits == []
