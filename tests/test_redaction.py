"""One redaction for everything that leaves the process or is stored: logs (httpx's lines included), errors
written to the database, API answers (tests/health/test_gate.py) and metric labels."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from sqlalchemy import Engine, insert, select, text, update
from sqlalchemy.orm import Session

from pipeline.db.models import Base, Company, CsvFetch, SchedulerRun
from pipeline.db.types import RedactedText
from pipeline.logs import configure_logging
from pipeline.redaction import redact
from pipeline.settings import load_settings
from pipeline.stages.analysis_results import record_usage

PRESIGNED = "https://bucket.s3.example.com/export.csv?X-Amz-Signature=abc123sig&token=tok456&page=2"
BROKER = "amqp://user:password-789@rabbit.internal:5672/%2F"


def test_query_string_values_are_masked_keys_kept() -> None:
    assert redact(f"GET {PRESIGNED} failed") == (
        "GET https://bucket.s3.example.com/export.csv?X-Amz-Signature=***&token=***&page=*** failed"
    )


def test_credentials_in_key_value_pairs_and_urls_are_masked() -> None:
    assert redact(f"host=db password=hunter2 user=x; {BROKER}") == (
        "host=db password=*** user=x; amqp://user:***@rabbit.internal:5672/%2F"
    )


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger writing to a buffer (restored afterwards), httpx at INFO as in the worker pools."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("httpx").level)
    output = io.StringIO()
    yield output
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("httpx").setLevel(saved[2])


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_httpx_request_lines_are_logged_without_their_query_tokens(
    captured: io.StringIO, log_format: str
) -> None:
    # Given the pipeline's logging, and httpx logging its requests at INFO
    configure_logging(load_settings(log_format=log_format, log_level="INFO"), stream=captured)
    logging.getLogger("httpx").setLevel(logging.INFO)

    # When a presigned URL is fetched
    with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200))) as client:
        client.get(PRESIGNED)

    # Then httpx's line is there, with the signature and token masked
    line = captured.getvalue()
    assert "HTTP Request: GET https://bucket.s3.example.com/export.csv?X-Amz-Signature=***" in line
    assert "abc123sig" not in line and "tok456" not in line


def test_every_error_column_is_redacted_on_its_way_in() -> None:
    # Given every column that stores an error, a reason or a detail
    names = {"error", "error_message", "derive_error", "reason", "detail", "raw_excerpt"}
    columns = [
        column for table in Base.metadata.tables.values() for column in table.c if column.name in names
    ]

    # Then each is RedactedText
    assert columns
    for column in columns:
        assert isinstance(column.type, RedactedText), f"{column.table.name}.{column.name}"


@pytest.mark.postgres
def test_run_and_fetch_errors_are_stored_masked(pg_engine: Engine) -> None:
    # Given a company, a fetch and a run
    company_id, fetch_id, run_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with Session(pg_engine) as db, db.begin():
        db.add(Company(id=company_id, name="acme", csv_url="https://example.com/a.csv"))
        db.flush()
        db.add(CsvFetch(id=fetch_id, company_id=company_id))
        db.execute(
            insert(SchedulerRun).values(id=run_id, job="csv-import", status="RUNNING", instance_id="i")
        )

    # When their errors are written, by the ORM and by a Core update, quoting credentials
    with Session(pg_engine) as db, db.begin():
        db.get_one(CsvFetch, fetch_id).error = f"fetch failed: {PRESIGNED}"
        db.execute(update(SchedulerRun).where(SchedulerRun.id == run_id).values(error=f"refused: {BROKER}"))

    # Then the rows hold them masked
    with pg_engine.connect() as connection:
        fetch_error = connection.scalar(text("SELECT error FROM csv_fetch WHERE id = :id"), {"id": fetch_id})
        run_error = connection.scalar(select(text("error")).select_from(text("scheduler_run")))
    assert fetch_error == (
        "fetch failed: https://bucket.s3.example.com/export.csv?X-Amz-Signature=***&token=***&page=***"
    )
    assert run_error == "refused: amqp://user:***@rabbit.internal:5672/%2F"


def test_a_metric_label_from_outside_is_masked() -> None:
    # When an answer reports a model name that carries a key
    record_usage("gpt-test sk-abcdefghijklmnop", "sync", 1, 1, 0.0)

    # Then the exported label is masked
    exposition = generate_latest(REGISTRY).decode()
    assert "sk-abcdefghijklmnop" not in exposition
    assert 'model="gpt-test ***"' in exposition
