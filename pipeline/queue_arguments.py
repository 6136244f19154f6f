"""The arguments each RabbitMQ queue of a stage is declared with: classic (the default) or quorum.

Each stage has three queues (Dramatiq's layout): the stage queue, its delay queue ``<queue>.DQ`` (retries
waiting for their backoff) and its dead-letter queue ``<queue>.XQ``. The stage and delay queues dead-letter
to the dead-letter queue, which keeps a message for ``dramatiq_dead_message_ttl`` (7 days).

With quorum queues (``RABBITMQ_QUEUE_TYPE=quorum``), replicated over the cluster's nodes:

* RabbitMQ counts the deliveries of each message and dead-letters it after ``RABBITMQ_DELIVERY_LIMIT``
  returns (``x-delivery-limit``). Dramatiq's own retry budget only sees an actor that raised; a message that
  kills its worker process every time never reaches it, and without the broker's limit would loop forever.
* Dead-lettering is ``at-least-once``: the message leaves the stage queue only once the dead-letter queue
  has confirmed it, so a node failing meanwhile cannot lose it (RabbitMQ requires ``reject-publish``
  overflow for this; no length limit is set, so no publish is ever rejected for it).

A queue's type and arguments are fixed when it is created: declaring an existing queue with others fails
with ``PRECONDITION_FAILED``. ``docs/operations.md`` describes the migration from classic queues.
"""

from __future__ import annotations

from typing import Literal

from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL
from dramatiq.common import xq_name

from pipeline.settings import Settings

__all__ = ["DEAD_MESSAGE_TTL_MS", "QueueKind", "queue_arguments"]

QueueKind = Literal["stage", "delay", "dead-letter"]

#: How long a dead letter is kept, as Dramatiq reads it (a static value: RabbitMQ expires from the head).
DEAD_MESSAGE_TTL_MS: int = DEAD_MESSAGE_TTL


def queue_arguments(settings: Settings, queue: str, kind: QueueKind) -> dict[str, object]:
    """The ``x-`` arguments of the ``kind`` queue of the stage queue ``queue``."""
    arguments: dict[str, object]
    if kind == "dead-letter":
        arguments = {"x-message-ttl": DEAD_MESSAGE_TTL_MS}
    else:
        arguments = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": xq_name(queue)}
    if settings.rabbitmq_queue_type == "quorum":
        arguments["x-queue-type"] = "quorum"
        if kind != "dead-letter":
            arguments["x-delivery-limit"] = settings.rabbitmq_delivery_limit
            arguments["x-dead-letter-strategy"] = "at-least-once"
            arguments["x-overflow"] = "reject-publish"
    return arguments
