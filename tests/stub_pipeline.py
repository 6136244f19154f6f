"""The pipeline's real actors on an in-memory broker, working on a test's database and settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dramatiq
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine

from pipeline.broker import build_broker
from pipeline.queues import ALL_QUEUES
from pipeline.settings import Settings
from pipeline.stages.actors import declare_actors
from pipeline.stages.runtime import BrokerDispatch, StageRuntime


@dataclass
class StubPipeline:
    broker: StubBroker
    runtime: StageRuntime
    actors: dict[str, dramatiq.Actor[..., None]]
    #: Every message the actors sent (hand-overs and fan-outs), in order.
    sent: list[Message[None]] = field(default_factory=list)

    def drain(self, *queues: str) -> None:
        """Work off ``queues`` (all by default) with real workers, until they are empty; messages sent to
        other queues wait there."""
        chosen = set(queues or ALL_QUEUES)
        worker = dramatiq.Worker(self.broker, queues=chosen, worker_timeout=50)
        worker.start()
        try:
            for queue in chosen:
                self.broker.join(queue, fail_fast=True)
        finally:
            worker.stop()


@contextmanager
def stub_pipeline(settings: Settings, engine: Engine) -> Iterator[StubPipeline]:
    """Every actor declared on a fresh in-memory broker, with a runtime over ``engine``."""
    broker = build_broker(settings.model_copy(update={"broker": "memory"}))
    assert isinstance(broker, StubBroker)
    sent: list[Message[None]] = []

    def publish(message: Message[None]) -> Message[None]:
        sent.append(message)
        return broker.enqueue(message)

    runtime = StageRuntime(settings, dispatch=BrokerDispatch(publish), engine=engine)
    actors = declare_actors(broker, settings, lambda: runtime)
    try:
        yield StubPipeline(broker, runtime, actors, sent)
    finally:
        runtime.close()
