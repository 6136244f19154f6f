"""Logging for every process: readable text, or one JSON object per line with ``LOG_FORMAT=json``.

Each record carries what is known about the work in hand: the scheduler or stage, the company, session or
batch, and the Dramatiq message id (:func:`log_context` binds them; the broker's :class:`LogContext`
middleware binds the message's). Credentials never reach the output: every line, whatever the format and
whichever library logged it (httpx's request lines included), passes through
:func:`pipeline.redaction.redact`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from pipeline.redaction import redact, register_secrets
from pipeline.settings import Settings

__all__ = [
    "CONTEXT_FIELDS",
    "JsonFormatter",
    "LogContext",
    "RedactingFormatter",
    "configure_logging",
    "log_context",
    "redact",
]

#: The context fields a record may carry, in output order.
CONTEXT_FIELDS = ("scheduler", "stage", "company_id", "session_id", "batch_id", "message_id", "actor")

_context: ContextVar[dict[str, str]] = ContextVar("livedash_log_context", default={})  # noqa: B039


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Bind context fields to every record logged inside the block (by this thread or task)."""
    token = _context.set({**_context.get(), **{key: value for key, value in fields.items() if value}})
    try:
        yield
    finally:
        _context.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            setattr(record, key, value)
        return True


class RedactingFormatter(logging.Formatter):
    """Text lines (with the context fields), redacted."""

    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{key}={getattr(record, key)}" for key in CONTEXT_FIELDS if hasattr(record, key))
        line = super().format(record)
        return redact(f"{line} [{context}]" if context else line)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the context fields, and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in CONTEXT_FIELDS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Install the format and level of ``settings`` on the root logger (replacing earlier handlers)."""
    register_secrets(
        secret.get_secret_value()
        for secret in (
            settings.openai_api_key,
            settings.admin_api_token,
            settings.secret_key,
            *settings.secret_key_fallbacks,
        )
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_ContextFilter())
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)


def _argument_fields(message: MessageProxy) -> dict[str, str]:
    """The message's arguments that are context fields (``company_id``, ``batch_id``...), named by the job
    registry's definition of its actor."""
    from pipeline.scheduling.jobs import find_actor

    actor = find_actor(message.actor_name)
    if actor is None:
        return {}
    named = {**dict(zip(actor.arguments, message.args, strict=False)), **message.kwargs}
    return {name: str(value) for name, value in named.items() if name in CONTEXT_FIELDS}


class LogContext(Middleware):
    """Binds the message id, actor and stage (its queue), and the arguments that name what the message is
    about, to every record logged while a message runs."""

    def __init__(self) -> None:
        self._tokens: dict[str, Any] = {}

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        fields = {"message_id": message.message_id, "actor": message.actor_name, "stage": message.queue_name}
        fields.update(_argument_fields(message))
        self._tokens[message.message_id] = _context.set({**_context.get(), **fields})

    def _unbind(self, message: MessageProxy) -> None:
        token = self._tokens.pop(message.message_id, None)
        if token is not None:
            _context.reset(token)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        self._unbind(message)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self._unbind(message)
