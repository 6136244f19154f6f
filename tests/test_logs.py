"""Logging: JSON lines with the work's context when asked, readable text otherwise, never a credential."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine

from pipeline.logs import LogContext, configure_logging, log_context, redact
from pipeline.scheduling.jobs import SUBMIT_BATCH
from pipeline.settings import Settings, load_settings
from tests.stub_pipeline import stub_pipeline

logger = logging.getLogger("pipeline.test")


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_the_context_of_the_work_in_hand(output: io.StringIO) -> None:
    # Given LOG_FORMAT=json
    configure_logging(load_settings(log_format="json"), stream=output)

    # When a record is logged while a company's import runs
    with log_context(stage="csv-import", company_id="c-1"), log_context(session_id="s-9"):
        logger.info("imported %d rows", 30)
    logger.warning("outside")

    # Then each record is one JSON object with the message and the context known at the time
    first, second = (json.loads(line) for line in output.getvalue().splitlines())
    assert first["message"] == "imported 30 rows"
    assert (first["level"], first["logger"]) == ("INFO", "pipeline.test")
    assert (first["stage"], first["company_id"], first["session_id"]) == ("csv-import", "c-1", "s-9")
    assert "company_id" not in second


def test_text_lines_are_readable_and_name_the_context(output: io.StringIO) -> None:
    configure_logging(load_settings(log_format="text"), stream=output)
    with log_context(batch_id="b-7"):
        logger.info("batch ingested")
    line = output.getvalue()
    assert "INFO pipeline.test: batch ingested [batch_id=b-7]" in line
    assert not line.startswith("{")


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_credentials_never_reach_the_log(output: io.StringIO, log_format: str) -> None:
    # Given configured secrets
    configure_logging(
        load_settings(
            log_format=log_format, openai_api_key="proj-key-123456", admin_api_token="admin-token-xyz"
        ),
        stream=output,
    )

    # When messages and an exception mention them, URL passwords, a bearer token and an OpenAI key
    logger.info("fetching https://acme:s3cret-pass@example.com/sessions.csv")
    logger.info("header Authorization: Bearer admin-token-xyz and key sk-abcdefghijklmnop")
    try:
        raise RuntimeError("amqp://guest:guest@rabbit:5672/ refused proj-key-123456")
    except RuntimeError:
        logger.exception("publish failed")

    # Then none of them is in the output, while the rest of each message is
    text = output.getvalue()
    for secret in ("s3cret-pass", "admin-token-xyz", "sk-abcdefghijklmnop", "guest@", "proj-key-123456"):
        assert secret not in text
    assert "https://acme:***@example.com/sessions.csv" in text
    assert "publish failed" in text


def test_redact_leaves_ordinary_text_alone() -> None:
    assert (
        redact("imported 30 rows from https://example.com/a.csv")
        == "imported 30 rows from https://example.com/a.csv"
    )


def test_messages_processed_by_a_worker_carry_their_message_id_and_actor(output: io.StringIO) -> None:
    # Given a broker with the LogContext middleware and an actor that logs
    configure_logging(load_settings(log_format="json"), stream=output)
    broker = StubBroker(middleware=[LogContext()])
    broker.emit_after("process_boot")

    @dramatiq.actor(broker=broker, queue_name="csv-import")
    def import_company(company_id: str) -> None:
        logger.info("importing")

    # When a message is processed
    message = import_company.send("c-42")
    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    broker.join("csv-import")
    worker.stop()

    # Then its record names the message, the actor, the stage and the company
    [record] = [json.loads(line) for line in output.getvalue().splitlines() if '"importing"' in line]
    assert record["message_id"] == message.message_id
    assert (record["actor"], record["stage"], record["company_id"]) == (
        "import_company",
        "csv-import",
        "c-42",
    )


def test_a_tick_logs_with_its_scheduler_id(
    output: io.StringIO, sqlite_engine: Engine, sqlite_settings: Settings
) -> None:
    # Given the csv-import tick actor on an in-memory broker
    configure_logging(load_settings(log_format="json"), stream=output)
    with stub_pipeline(sqlite_settings, sqlite_engine) as pipeline:
        # When its tick runs, then what it logs names its scheduler
        pipeline.actors["csv_import_tick"].send()
        pipeline.drain("csv-import")
    [record] = [json.loads(line) for line in output.getvalue().splitlines() if "companies sent" in line]
    assert record["scheduler"] == "csv-import"


def test_a_message_names_its_batch_from_the_registrys_argument_names(output: io.StringIO) -> None:
    # Given a broker with the LogContext middleware and an actor that logs, named like the registry's
    configure_logging(load_settings(log_format="json"), stream=output)
    broker = StubBroker(middleware=[LogContext()])
    broker.emit_after("process_boot")

    @dramatiq.actor(broker=broker, queue_name="batch-processing", actor_name=SUBMIT_BATCH.name)
    def submit(anything: str) -> None:
        logger.info("submitting")

    # When a message is processed
    submit.send("b-7")
    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    broker.join("batch-processing")
    worker.stop()

    # Then its record names the batch by the registry's name of the argument, whatever the function calls it
    [record] = [json.loads(line) for line in output.getvalue().splitlines() if '"submitting"' in line]
    assert record["batch_id"] == "b-7"
