"""One chat completion with our own retry policy: 429, 5xx, timeouts and connection errors are retried with
backoff that honours ``Retry-After``, up to ``OPENAI_MAX_ATTEMPTS``; anything else fails at once.

The SDK's own retries are off (``max_retries=0``): it stops retrying silently above a 120 s Retry-After and
records nothing, while every attempt here is reported to the caller, who records it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletion

from pipeline.errors import PermanentError, PipelineError, TransientError, is_transient
from pipeline.settings import Settings

__all__ = [
    "Attempt",
    "CallFailed",
    "Completion",
    "PermanentCallFailure",
    "TransientCallFailure",
    "complete_with_retries",
    "openai_client",
]

_BASE_BACKOFF_SECONDS = 1.0
_MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class Attempt:
    """One call that did not produce an answer."""

    number: int
    error: str
    retry_after: float | None


@dataclass(frozen=True)
class Completion:
    """A call that returned 200: the parsed completion (the SDK does not validate it) and its request id."""

    completion: ChatCompletion
    request_id: str | None
    elapsed: float


class CallFailed(PipelineError):
    """No answer after the attempts allowed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientCallFailure(CallFailed, TransientError):
    """The API kept failing in a way a later try may not (timeouts, 5xx, 429, a long Retry-After)."""


class PermanentCallFailure(CallFailed, PermanentError):
    """The API refused the request (other 4xx) or answered something that is not a chat completion."""


def openai_client(settings: Settings) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=settings.openai_api_key.get_secret_value() or "unset",
        base_url=settings.openai_base_url,
        max_retries=0,
        timeout=httpx2.Timeout(connect=5.0, read=settings.openai_timeout_ms / 1000, write=60.0, pool=10.0),
    )


def _retry_after(response: Any) -> float | None:
    """Seconds the server asks us to wait, from ``retry-after-ms`` or ``retry-after``."""
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(float(value) * scale, 0.0)
        except ValueError:
            continue
    return None


def _failure_of(exc: Exception) -> tuple[CallFailed, float | None]:
    """What one failed attempt means, of the transient or the permanent kind, and any Retry-After."""
    if isinstance(exc, openai.APITimeoutError):
        return TransientCallFailure("request timed out"), None
    if isinstance(exc, openai.APIConnectionError):
        return TransientCallFailure(f"connection error: {exc}"), None
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        kind = TransientCallFailure if status in (408, 429) or status >= 500 else PermanentCallFailure
        return kind(f"HTTP {status}: {exc.message}"), _retry_after(exc.response)
    return PermanentCallFailure(f"{type(exc).__name__}: {exc}"), None


def complete_with_retries(
    client: openai.OpenAI,
    body: dict[str, Any],
    settings: Settings,
    *,
    on_attempt_failed: Callable[[Attempt], None],
    sleep: Callable[[float], None] = time.sleep,
) -> Completion:
    """Call chat completions until one returns 200, retrying what may pass; raise :class:`CallFailed`."""
    max_wait = settings.openai_max_retry_wait_ms / 1000
    for number in range(1, settings.openai_max_attempts + 1):
        started = time.monotonic()
        try:
            raw = client.chat.completions.with_raw_response.create(**body)
            completion = raw.parse()
        except openai.APIError as exc:
            failure, retry_after = _failure_of(exc)
        else:
            if not isinstance(completion, ChatCompletion):
                raise PermanentCallFailure("the API answered 200 with a body that is not a chat completion")
            return Completion(completion, raw.headers.get("x-request-id"), time.monotonic() - started)
        reason = failure.reason
        on_attempt_failed(Attempt(number, reason, retry_after))
        if not is_transient(failure):
            raise failure
        if number == settings.openai_max_attempts:
            raise TransientCallFailure(f"{reason} (gave up after {number} attempts)")
        backoff = min(_BASE_BACKOFF_SECONDS * 2 ** (number - 1), _MAX_BACKOFF_SECONDS)
        wait = retry_after if retry_after is not None else backoff
        if wait > max_wait:
            raise TransientCallFailure(
                f"{reason}; Retry-After of {wait:.0f} s is over OPENAI_MAX_RETRY_WAIT_MS"
            )
        sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")
