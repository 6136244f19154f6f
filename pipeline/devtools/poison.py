"""A poison message for fault tests: an actor that kills the worker process it runs in, every time.

Only the chaos harness loads it, beside the pipeline's actors (``dramatiq pipeline.actors
pipeline.devtools.poison``); production pools never do. Dramatiq's retries never see such a message (the
process dies before any middleware runs), so only the broker's delivery limit (quorum queues,
``RABBITMQ_DELIVERY_LIMIT``) stops it from killing pools forever.
"""

from __future__ import annotations

import os
import signal

import dramatiq

from pipeline.actors import broker
from pipeline.queues import SESSION_PROCESSING

__all__ = ["POISON_ACTOR", "POISON_QUEUE", "poison_pill"]

POISON_ACTOR = "poison_pill"
POISON_QUEUE = SESSION_PROCESSING


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


poison_pill = dramatiq.actor(broker=broker, queue_name=POISON_QUEUE, actor_name=POISON_ACTOR, max_retries=0)(
    _die
)
