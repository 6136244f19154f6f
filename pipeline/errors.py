"""The pipeline's one tree of errors, and the retry decision that reads it.

Every error a stage raises for a reason of the pipeline (a fetch that failed, an import refused, a model
call given up on, an answer that cannot be used) sits under :class:`PipelineError`, in one of two kinds::

    PipelineError
    ├── TransientError   retrying later may help: timeouts, broken connections, HTTP 5xx/429/408,
    │   │                a full import pool
    │   └── ServiceUnavailable   a service the pipeline needs (PostgreSQL, RabbitMQ, the OpenAI API)
    │                            did not answer; named with its URL, password removed
    └── PermanentError   retrying cannot help: other HTTP 4xx, a refused URL, a body over its cap,
                         a file that is not a CSV, a wrong SECRET_KEY, an unusable answer

A stage's own error classes inherit from its base (``FetchError``, ``CsvImportFailed``, ``CallFailed``) and
from one of the two kinds, so "is it worth retrying?" is asked one way everywhere: :func:`is_transient`.
An error outside the tree (a bug, a database outage) is neither kind: the actors retry it like Dramatiq
does by default, up to ``ACTOR_MAX_RETRIES``.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "PermanentError",
    "PipelineError",
    "ServiceUnavailable",
    "TransientError",
    "is_transient",
    "should_retry",
]


class PipelineError(Exception):
    """An error of the pipeline: a failure of one piece of work with a reason fit for a human."""


class TransientError(PipelineError):
    """A failure that may go away if the same work is tried again later."""

    #: How many times an actor retries this kind of failure; ``None`` means ``ACTOR_MAX_RETRIES``.
    max_retries: ClassVar[int | None] = None


class ServiceUnavailable(TransientError):
    """A service the pipeline needs did not answer: ``service`` (``PostgreSQL``, ``RabbitMQ``...) at ``url``.

    The URL is kept without its user and password, so the error may be shown and logged as it is.
    """

    def __init__(self, service: str, url: str, reason: str) -> None:
        # Imported here: pipeline.sources.urls itself imports this module.
        from pipeline.sources.urls import redact_url

        self.service = service
        self.url = redact_url(url)
        self.reason = reason
        # All in args, so that the error survives pickling (to another process) whole.
        super().__init__(service, self.url, reason)

    def __str__(self) -> str:
        return f"{self.service} unavailable at {self.url}: {self.reason}"


class PermanentError(PipelineError):
    """A failure that trying the same work again cannot fix."""


def is_transient(error: BaseException | None) -> bool:
    """Whether ``error`` is a failure worth retrying later; ``False`` for ``None``."""
    return isinstance(error, TransientError)


def should_retry(retries: int, error: BaseException, *, max_retries: int) -> bool:
    """The retry decision of every work actor, after ``retries`` earlier retries of a message.

    A :class:`PermanentError` is never retried; a :class:`TransientError` is retried up to its own
    ``max_retries`` when it has one; anything else up to ``max_retries`` (``ACTOR_MAX_RETRIES``).
    """
    if isinstance(error, PermanentError):
        return False
    budget = error.max_retries if isinstance(error, TransientError) else None
    return retries < (max_retries if budget is None else budget)
