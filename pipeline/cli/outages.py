"""Telling an outage or a bad configuration from a bug: what escaped a command, as one line and an exit code.

The outages are the exceptions that mean PostgreSQL, RabbitMQ or the OpenAI API did not answer.

A command does not catch these itself: the entry point asks :func:`service_unavailable` about whatever
escaped it, and prints one line instead of a traceback. The exception types are looked up in
``sys.modules`` only: a library that was never imported cannot have raised anything, and the CLI must not
import SQLAlchemy, pika or the OpenAI SDK just to find out.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

from pipeline.cli.errors import UNAVAILABLE, USAGE_ERROR
from pipeline.errors import ServiceUnavailable
from pipeline.settings import Settings, SettingsError, get_settings

__all__ = ["explain", "service_unavailable"]

#: Where the OpenAI SDK goes when OPENAI_BASE_URL is unset.
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"

#: SQLSTATE classes of a lost server: connection exceptions, and the server shutting down or starting.
_SERVER_GONE = ("08", "57P")


def _loaded(module: str, name: str) -> type[BaseException] | None:
    loaded = sys.modules.get(module)
    found = getattr(loaded, name, None) if loaded is not None else None
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _is_instance(error: BaseException, module: str, name: str) -> bool:
    kind = _loaded(module, name)
    return kind is not None and isinstance(error, kind)


def _database_down(error: BaseException) -> bool:
    """A psycopg connection failure (no SQLSTATE: the client gave up) or a server going away."""
    if not _is_instance(error, "psycopg", "OperationalError"):
        return False
    state: str | None = getattr(error, "sqlstate", None)
    return state is None or state.startswith(_SERVER_GONE)


def _broker_down(error: BaseException) -> bool:
    return _is_instance(error, "pika.exceptions", "AMQPConnectionError") or _is_instance(
        error, "dramatiq.errors", "BrokerConnectionError"
    )


def _openai_down(error: BaseException) -> bool:
    return _is_instance(error, "openai", "APIConnectionError")


#: Each service: how to recognise its outage, its name, and its URL in the settings.
_SERVICES: tuple[tuple[Callable[[BaseException], bool], str, Callable[[Settings], str]], ...] = (
    (_database_down, "PostgreSQL", lambda settings: settings.database_url),
    (_broker_down, "RabbitMQ", lambda settings: settings.rabbitmq_url),
    (_openai_down, "OpenAI API", lambda settings: settings.openai_base_url or OPENAI_DEFAULT_URL),
)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every error it was raised from or while handling (SQLAlchemy and Dramatiq wrap)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _reason(error: BaseException) -> str:
    """The first line of the library's message, credentials masked."""
    from pipeline.logs import redact

    lines = str(error).strip().splitlines()
    return redact(lines[0] if lines else type(error).__name__)


def service_unavailable(error: BaseException) -> ServiceUnavailable | None:
    """The outage ``error`` stands for, or ``None`` when it is something else (a bug, bad input)."""
    for cause in _chain(error):
        if isinstance(cause, ServiceUnavailable):
            return cause
        for is_down, service, url_of in _SERVICES:
            if is_down(cause):
                try:
                    url = url_of(get_settings())
                except SettingsError:
                    url = "(unknown URL: the settings do not load)"
                return ServiceUnavailable(service, url, _reason(cause))
    return None


def explain(error: BaseException) -> tuple[str, int] | None:
    """The one line and the exit code for ``error``; ``None`` for a bug, which keeps its traceback."""
    if isinstance(error, SettingsError):
        return str(error), USAGE_ERROR
    outage = service_unavailable(error)
    return (str(outage), UNAVAILABLE) if outage is not None else None
