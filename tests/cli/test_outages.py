"""A service that does not answer is one line naming it and its URL, exit code 69, never a traceback.

Each test runs the real command in its own process against a closed port of 127.0.0.1, as an operator would
meet an outage; the URLs carry a password that must never be printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx2
import openai
import psycopg
import pytest

from pipeline.cli.errors import UNAVAILABLE
from pipeline.cli.outages import explain, service_unavailable
from pipeline.errors import ServiceUnavailable, TransientError
from pipeline.settings import get_settings

#: Nothing listens on port 1 of 127.0.0.1: every connection is refused at once.
DEAD_DATABASE = "postgresql://livedash:db-secret@127.0.0.1:1/livedash"
DEAD_BROKER = "amqp://guest:mq-secret@127.0.0.1:1/h14b"


def _livedash(tmp_path: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in {"BROKER", "DATABASE_URL"}}
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *arguments],
        env=env,
        cwd=tmp_path,  # no .env file of the checkout
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _assert_one_line_outage(done: subprocess.CompletedProcess[str], service: str, address: str) -> None:
    assert done.returncode == UNAVAILABLE, done.stderr
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: {service} unavailable at "), line
    assert address in line
    assert "secret" not in line and "Traceback" not in line


@pytest.mark.parametrize(
    "arguments",
    [["status"], ["companies", "list", "--json"], ["schedulers", "list"], ["sessions", "failed"]],
    ids=" ".join,
)
def test_postgresql_down_is_one_line_naming_it(tmp_path: Path, arguments: list[str]) -> None:
    # Given a DATABASE_URL, with a password, where nothing answers
    # When a command that reads the database runs
    done = _livedash(tmp_path, *arguments, DATABASE_URL=DEAD_DATABASE)

    # Then it says in one line that PostgreSQL at that URL is unavailable, without the password, and exits 69
    _assert_one_line_outage(done, "PostgreSQL", "postgresql://127.0.0.1:1/livedash")


def test_rabbitmq_down_is_one_line_naming_it(tmp_path: Path) -> None:
    # Given a migrated database but a RABBITMQ_URL where nothing answers
    database = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    assert _livedash(tmp_path, "db", "upgrade", DATABASE_URL=database).returncode == 0

    # When a tick is triggered for the workers, and the dead letters are listed
    for arguments in (["schedulers", "trigger", "csv-import"], ["dlq", "list"]):
        done = _livedash(
            tmp_path, *arguments, DATABASE_URL=database, BROKER="rabbitmq", RABBITMQ_URL=DEAD_BROKER
        )

        # Then each says in one line that RabbitMQ at that URL is unavailable, and exits 69
        _assert_one_line_outage(done, "RabbitMQ", "amqp://127.0.0.1:1/h14b")


def test_an_outage_is_told_from_other_database_errors() -> None:
    # Given a connection refused, a server going away, and a lock timeout (the server answered)
    refused = psycopg.OperationalError("connection failed: Connection refused")
    shutdown = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    lock_timeout = psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")

    # Then the first two are PostgreSQL outages, even wrapped, and the lock timeout is not
    for error in (refused, shutdown):
        try:
            raise RuntimeError("while reading") from error
        except RuntimeError as wrapped:
            outage = service_unavailable(wrapped)
        assert isinstance(outage, ServiceUnavailable) and isinstance(outage, TransientError)
        assert outage.service == "PostgreSQL"
    assert service_unavailable(lock_timeout) is None
    assert explain(ValueError("a bug")) is None


def test_the_error_keeps_no_credentials() -> None:
    outage = ServiceUnavailable("RabbitMQ", f"amqp://guest:{uuid.uuid4()}@broker:5672/eu", "refused")

    assert str(outage) == "RabbitMQ unavailable at amqp://broker:5672/eu: refused"


def test_an_openai_connection_error_names_the_configured_api(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given OPENAI_BASE_URL with credentials in it, and the SDK failing to connect
    monkeypatch.setenv("OPENAI_BASE_URL", "http://user:api-secret@127.0.0.1:1/v1")
    get_settings.cache_clear()
    try:
        error = openai.APIConnectionError(request=httpx2.Request("POST", "http://127.0.0.1:1/v1/batches"))
        outage = service_unavailable(error)
    finally:
        get_settings.cache_clear()

    # Then it is the OpenAI API's outage, at that URL without the credentials
    assert outage is not None
    assert str(outage).startswith("OpenAI API unavailable at http://127.0.0.1:1/v1: ")
    assert "secret" not in str(outage)
