"""The pipeline's real actors on an in-memory broker, working on a test's database and settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dramatiq
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

    def drain(self, *queues: str) -> None:
        """Run every message of ``queues`` (all by default) and of what they send, until all are empty."""
        worker = dramatiq.Worker(self.broker, worker_timeout=50)
        worker.start()
        try:
            for queue in queues or ALL_QUEUES:
                self.broker.join(queue, fail_fast=True)
        finally:
            worker.stop()


@contextmanager
def stub_pipeline(settings: Settings, engine: Engine) -> Iterator[StubPipeline]:
    """Every actor declared on a fresh in-memory broker, with a runtime over ``engine``."""
    broker = build_broker(settings.model_copy(update={"broker": "memory"}))
    assert isinstance(broker, StubBroker)
    runtime = StageRuntime(settings, dispatch=BrokerDispatch(broker.enqueue), engine=engine)
    actors = declare_actors(broker, settings, lambda: runtime)
    try:
        yield StubPipeline(broker, runtime, actors)
    finally:
        runtime.close()
