"""A worker whose one actor kills its own process: what a message that crashes its worker looks like.

    python tests/rabbitmq/dying_worker.py <rabbitmq-urls> <queue> <delivery-limit>

Quorum queues, so that RabbitMQ counts the deliveries that were never acknowledged.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import dramatiq

from pipeline.broker import build_broker
from pipeline.settings import load_settings


def main() -> None:
    urls, queue, limit = sys.argv[1:4]
    settings = load_settings(
        rabbitmq_url=urls, rabbitmq_queue_type="quorum", rabbitmq_delivery_limit=int(limit)
    )
    broker = build_broker(settings)

    def crash() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    dramatiq.actor(broker=broker, queue_name=queue, actor_name="crash")(crash)
    worker = dramatiq.Worker(broker, queues={queue}, worker_threads=1, worker_timeout=100)
    worker.start()
    time.sleep(120)


if __name__ == "__main__":
    main()
