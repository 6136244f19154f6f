"""Reaching the real services in tests, the way Dramatiq's own suite does.

A test that needs PostgreSQL or RabbitMQ skips when the service is absent on a developer's machine, and
fails when ``CI=true``: in CI a missing service is a broken build, never a quietly skipped test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from pipeline.db.engine import normalize_database_url

__all__ = ["RABBITMQ_URL", "require_rabbitmq", "scratch_postgres_database", "service_unavailable"]

IN_CI = os.environ.get("CI", "").lower() == "true"

#: A database on the server the tests may use; each test run creates its own scratch databases beside it.
TEST_DATABASE_URL = normalize_database_url(
    os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
)
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def service_unavailable(service: str, reason: object) -> None:
    message = f"{service} is not reachable: {reason}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: integration tests must not skip)")
    pytest.skip(message)


def _admin_engine() -> Engine:
    return create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")


@contextmanager
def scratch_postgres_database(prefix: str = "livedash_test") -> Iterator[str]:
    """Create an empty database for the duration of the block and yield its URL."""
    admin = _admin_engine()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        service_unavailable("PostgreSQL", exc)
    try:
        yield make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def require_rabbitmq() -> None:
    import pika

    try:
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    except Exception as exc:
        service_unavailable("RabbitMQ", exc)
    else:
        connection.close()
