"""Dead letters on the real RabbitMQ: listed without being consumed, replayed once onto their queue."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import dramatiq
import pika
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from pipeline.broker import build_broker
from pipeline.dead_letters import list_dead_letters, replay_dead_letters
from pipeline.queues import IMPORT_PROCESSING
from pipeline.settings import load_settings
from tests.services import RABBITMQ_URL, require_rabbitmq

DEAD = f"{IMPORT_PROCESSING}.XQ"


def _depth(queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


@pytest.fixture
def broker() -> Iterator[dramatiq.Broker]:
    require_rabbitmq()
    rabbit = build_broker(load_settings(rabbitmq_url=RABBITMQ_URL))
    assert isinstance(rabbit, RabbitmqBroker)
    rabbit.declare_queue(IMPORT_PROCESSING, ensure=True)
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    for queue in (IMPORT_PROCESSING, DEAD):
        connection.channel().queue_purge(queue)
    connection.close()
    yield rabbit
    rabbit.close()


def _dead_letter(actor_args: list[str], error: str) -> str:
    """Put a message into the dead-letter queue the way Dramatiq leaves it after its last retry."""
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=IMPORT_PROCESSING,
        actor_name="process_imports",
        args=(actor_args,),
        kwargs={},
        options={
            "retries": 5,
            "traceback": f"Traceback ...\nValueError: {error}",
            "requeue_timestamp": int(time.time() * 1000),
        },
    )
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    connection.channel().basic_publish("", DEAD, message.encode(), pika.BasicProperties(delivery_mode=2))
    connection.close()
    return message.message_id


def test_dead_letters_are_listed_without_being_consumed(broker: dramatiq.Broker) -> None:
    # Given two dead-lettered chunks
    first = _dead_letter(["a"], "database went away")
    _dead_letter(["b"], "something else")

    # When they are listed, twice
    listed = list_dead_letters(RABBITMQ_URL, [IMPORT_PROCESSING])
    again = list_dead_letters(RABBITMQ_URL, [IMPORT_PROCESSING])

    # Then each shows its actor, arguments, last error and retries, and both are still there
    assert listed[0].message_id == first
    assert listed[0].actor == "process_imports" and listed[0].args == [["a"]]
    assert listed[0].error == "ValueError: database went away" and listed[0].retries == 5
    assert listed == again
    assert _depth(DEAD) == 2


def test_a_replay_sends_the_chosen_message_back_once_with_a_fresh_retry_budget(
    broker: dramatiq.Broker,
) -> None:
    # Given two dead-lettered chunks
    chosen = _dead_letter(["a"], "database went away")
    _dead_letter(["b"], "something else")

    # When only the first is replayed
    replayed = replay_dead_letters(RABBITMQ_URL, IMPORT_PROCESSING, message_id=chosen, publish=broker.enqueue)

    # Then it is back on its queue, once, without its old retries, and the other stays dead-lettered
    assert [letter.message_id for letter in replayed] == [chosen]
    assert _depth(IMPORT_PROCESSING) == 1
    assert _depth(DEAD) == 1
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    _, _, body = connection.channel().basic_get(IMPORT_PROCESSING, auto_ack=True)
    connection.close()
    requeued = json.loads(body)
    assert requeued["message_id"] == chosen and requeued["args"] == [["a"]]
    assert "retries" not in requeued["options"] and "traceback" not in requeued["options"]


def test_the_cli_lists_and_replays(broker: dramatiq.Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.settings import get_settings

    # Given a dead-lettered chunk and the CLI pointed at the same RabbitMQ
    chosen = _dead_letter(["a"], "database went away")
    monkeypatch.setenv("RABBITMQ_URL", RABBITMQ_URL)
    get_settings.cache_clear()
    runner = CliRunner()

    # When the operator lists the dead letters, replays one that does not exist, then the real one
    listed = runner.invoke(app, ["dlq", "list", IMPORT_PROCESSING, "--json"])
    missing = runner.invoke(app, ["dlq", "replay", IMPORT_PROCESSING, "--id", "no-such-id"])
    replayed = runner.invoke(app, ["dlq", "replay", IMPORT_PROCESSING, "--id", chosen])
    get_settings.cache_clear()

    # Then the listing names it, the unknown id is one clear line with exit 3, and the replay moves it
    assert [letter["messageId"] for letter in json.loads(listed.stdout)] == [chosen]
    assert missing.exit_code == 3 and "no dead letter 'no-such-id'" in missing.stderr
    assert replayed.exit_code == 0 and replayed.stdout.startswith("1 message(s) sent back")
    assert (_depth(IMPORT_PROCESSING), _depth(DEAD)) == (1, 0)
