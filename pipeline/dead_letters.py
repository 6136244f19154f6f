"""Dead letters: what Dramatiq gave up on, listed and sent back (nothing is lost silently).

Dramatiq dead-letters a message to ``<queue>.XQ`` when its retries are used up or it cannot be decoded; with
quorum queues RabbitMQ does when a message was delivered more than ``RABBITMQ_DELIVERY_LIMIT`` times without
an acknowledgement (its worker died each time). The dead-letter queue keeps it for
``dramatiq_dead_message_ttl`` (7 days). Listing reads the dead-letter queue without
consuming it: every message taken is handed back to RabbitMQ when the channel closes. Replaying publishes the
message again on its queue (with confirms, with a fresh retry budget) and only then removes it from the
dead-letter queue; every actor is idempotent, so a replay can never do work twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import BasicProperties

from pipeline.broker import name_connections
from pipeline.settings import split_urls

__all__ = ["DeadLetter", "dead_letter_queue", "list_dead_letters", "replay_dead_letters"]

#: Messages read from one dead-letter queue at most, so a flooded queue cannot exhaust memory.
MAX_LISTED = 10_000


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str
    actor: str
    args: list[object]
    kwargs: dict[str, object]
    error: str | None
    failed_at: datetime | None
    retries: int


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.XQ"


#: The error of a message RabbitMQ dead-lettered itself: its worker never finished it, so it has no traceback.
DELIVERY_LIMIT_ERROR = "delivered more than RABBITMQ_DELIVERY_LIMIT times without an acknowledgement"


def _broker_reason(properties: BasicProperties | None) -> str | None:
    """Why RabbitMQ dead-lettered the message, from its ``x-death`` header (None: Dramatiq did)."""
    deaths = ((properties.headers if properties is not None else None) or {}).get("x-death") or []
    reasons = {str(death.get("reason")) for death in deaths if isinstance(death, dict)}
    return DELIVERY_LIMIT_ERROR if "delivery_limit" in reasons else None


def _decode(queue: str, body: bytes, properties: BasicProperties | None = None) -> DeadLetter:
    try:
        data = json.loads(body)
    except ValueError:
        return DeadLetter(queue, "?", "?", [], {}, "undecodable message body", None, 0)
    options = data.get("options") or {}
    stamp = options.get("requeue_timestamp") or data.get("message_timestamp")
    traceback = options.get("traceback")
    broker_reason = _broker_reason(properties)
    return DeadLetter(
        queue=queue,
        message_id=str(data.get("message_id", "?")),
        actor=str(data.get("actor_name", "?")),
        args=list(data.get("args") or []),
        kwargs=dict(data.get("kwargs") or {}),
        error=broker_reason or (traceback.strip().splitlines()[-1] if traceback else None),
        failed_at=datetime.fromtimestamp(stamp / 1000, UTC) if stamp else None,
        retries=int(options.get("retries", 0)),
    )


@contextmanager
def _channel(url: str) -> Iterator[BlockingChannel]:
    # ``url`` may name every node of a cluster: the first that answers serves (they share the queues).
    parameters = [pika.URLParameters(node) for node in split_urls(url)]
    name_connections(parameters, "dead letters")
    connection = pika.BlockingConnection(parameters)
    try:
        yield connection.channel()
    finally:
        # Closing without acknowledging hands every message taken back to its queue.
        connection.close()


def _taken(channel: BlockingChannel, queue: str) -> Iterator[tuple[int, BasicProperties, bytes]]:
    for _ in range(MAX_LISTED):
        method, properties, body = channel.basic_get(dead_letter_queue(queue), auto_ack=False)
        if method is None:
            return
        yield method.delivery_tag, properties, body


def _exists(channel: BlockingChannel, queue: str) -> bool:
    try:
        channel.queue_declare(dead_letter_queue(queue), passive=True)
    except pika.exceptions.ChannelClosedByBroker:
        return False
    return True


def list_dead_letters(url: str, queues: list[str]) -> list[DeadLetter]:
    """The dead letters of ``queues``, oldest first; nothing is consumed."""
    letters: list[DeadLetter] = []
    for queue in queues:
        with _channel(url) as channel:
            if _exists(channel, queue):
                taken = _taken(channel, queue)
                letters += [_decode(queue, body, properties) for _, properties, body in taken]
    return letters


def replay_dead_letters(
    url: str,
    queue: str,
    *,
    message_id: str | None = None,
    publish: Callable[[dramatiq.Message[Any]], object],
) -> list[DeadLetter]:
    """Send the dead letters of ``queue`` (or the one with ``message_id``) back to it; return what was sent.

    ``publish`` enqueues on the real broker (with publisher confirms); a message leaves the dead-letter queue
    only after it was published, so a failure in between at worst leaves a copy in both.
    """
    replayed: list[DeadLetter] = []
    with _channel(url) as channel:
        if not _exists(channel, queue):
            return []
        for tag, properties, body in list(_taken(channel, queue)):
            letter = _decode(queue, body, properties)
            if message_id is not None and letter.message_id != message_id:
                continue
            message = dramatiq.Message.decode(body)
            options = {
                key: value
                for key, value in message.options.items()
                if key not in {"retries", "traceback", "requeue_timestamp"}
            }
            publish(
                dramatiq.Message(
                    queue_name=message.queue_name,
                    actor_name=message.actor_name,
                    args=message.args,
                    kwargs=message.kwargs,
                    options=options,
                    message_id=message.message_id,
                    message_timestamp=message.message_timestamp,
                )
            )
            channel.basic_ack(tag)
            replayed.append(letter)
    return replayed
