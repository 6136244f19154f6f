"""Three ``livedash scheduler`` replicas and periodiq beside them over 100 driven ticks, while replicas are
SIGKILLed (at any point of their pass) and new ones started: every tick runs exactly once.

The replicas are processes running the scheduler loop on the test's clock; periodiq and a real Dramatiq
worker running the tick actor are in the test process, on the real RabbitMQ (the vhost of
``TEST_RABBITMQ_URL``) and PostgreSQL, as in ``test_periodiq``.
"""

from __future__ import annotations

import multiprocessing
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.context import SpawnProcess
from typing import Any

import dramatiq
import periodiq
import pika
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipeline.broker import build_broker
from pipeline.db.engine import create_db_engine
from pipeline.db.enums import SchedulerRunStatus, TickOutcome
from pipeline.db.models import SchedulerRun, SchedulerTick
from pipeline.queues import CSV_IMPORT
from pipeline.scheduling.loop import SchedulerLoop
from pipeline.settings import Settings, load_settings
from pipeline.stages.actors import declare_actors
from pipeline.stages.runtime import BrokerDispatch, StageRuntime
from tests.services import RABBITMQ_URL, require_rabbitmq

#: A Sunday from midnight: 100 ticks of a Sunday-only ten-minute spec (periodiq's own parser fires none).
SUNDAY = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
TICKS = [SUNDAY + timedelta(minutes=10 * n) for n in range(100)]
YEARLY = "0 0 1 1 *"
SCHEDULE = {
    "csv_import_interval": "*/10 * * * 0",
    "import_processing_interval": YEARLY,
    "session_processing_interval": YEARLY,
    "batch_processing_interval": YEARLY,
    "batch_processing_check_interval": YEARLY,
    "scheduler_catchup_window": 0,
    "scheduler_overlap_timeout": 1,
}
REPLICAS = 3
#: Share of ticks at which one replica is killed and replaced.
KILL_RATE = 0.2


def _replica(database_url: str, name: str, inbox: Any, outbox: Any) -> None:
    """One scheduler replica on the test's clock: a pass at each moment it is sent, until None."""
    settings = load_settings(
        database_url=database_url, rabbitmq_url=RABBITMQ_URL, scheduler_instance_id=name, **SCHEDULE
    )
    broker = build_broker(settings)
    clock = [SUNDAY]

    def publish(message: dramatiq.Message[Any]) -> dramatiq.Message[Any]:
        # The replica lives at the test's time: its messages carry it, as a real replica's carry its own (a
        # message whose tick row a kill rolled back claims its tick by this time, in the worker).
        sent: dramatiq.Message[Any] = broker.enqueue(
            message.copy(message_timestamp=int(clock[0].timestamp() * 1000))
        )
        return sent

    loop = SchedulerLoop(create_db_engine(settings), settings, publish)
    outbox.put((name, None))
    while (moment := inbox.get()) is not None:
        clock[0] = moment
        loop.run_pass(moment)
        outbox.put((name, moment))
    broker.close()


class _Replicas:
    """The replica processes, by name; a killed one is replaced by a new one with a new name."""

    def __init__(self, database_url: str) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.database_url = database_url
        self.outbox: Any = self.context.Queue()
        self.live: dict[str, tuple[SpawnProcess, Any]] = {}
        self.started = 0
        self.killed = 0

    def start_one(self) -> None:
        name = f"replica-{self.started}"
        self.started += 1
        inbox = self.context.Queue()
        process = self.context.Process(target=_replica, args=(self.database_url, name, inbox, self.outbox))
        process.start()
        self.live[name] = (process, inbox)
        self._wait({name}, None)

    def _wait(self, names: set[str], moment: datetime | None) -> None:
        waiting = set(names)
        while waiting:
            name, done = self.outbox.get(timeout=120)
            if done == moment:
                waiting.discard(name)

    def tick(self, moment: datetime, rng: random.Random) -> None:
        for _, inbox in self.live.values():
            inbox.put(moment)
        if rng.random() < KILL_RATE:
            # SIGKILL one while its pass may be anywhere: before, during or after recording the tick
            victim = rng.choice(sorted(self.live))
            process, _ = self.live.pop(victim)
            process.kill()
            process.join(timeout=30)
            self.killed += 1
        self._wait(set(self.live), moment)

    def stop(self) -> None:
        for process, inbox in self.live.values():
            inbox.put(None)
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


@pytest.fixture
def churn(pg_settings: Settings) -> Iterator[Settings]:
    require_rabbitmq()
    settings = pg_settings.model_copy(update={**SCHEDULE, "rabbitmq_url": RABBITMQ_URL})
    broker = build_broker(settings)
    assert isinstance(broker, RabbitmqBroker)
    broker.declare_queue(CSV_IMPORT, ensure=True)
    broker.close()
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    connection.channel().queue_purge(CSV_IMPORT)
    yield settings
    connection.channel().queue_purge(CSV_IMPORT)
    connection.close()


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_each_of_100_ticks_runs_once_while_scheduler_replicas_are_killed_and_replaced(
    pg_engine: Engine, churn: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = churn
    # Given a worker running the tick actors, periodiq, and three scheduler replicas
    broker = build_broker(settings)
    assert isinstance(broker, RabbitmqBroker)
    runtime = StageRuntime(settings, dispatch=BrokerDispatch(broker.enqueue), engine=pg_engine)
    declare_actors(broker, settings, lambda: runtime)
    periodic = periodiq.Scheduler(actors=[a for a in broker.actors.values() if "periodic" in a.options])
    worker = dramatiq.Worker(broker, queues={CSV_IMPORT}, worker_threads=2, worker_timeout=100)
    worker.start()
    wakeups: dict[str, Any] = {}
    # periodiq's middleware drops a message sent more than 30 s before "now": now is the test's clock
    monkeypatch.setattr(periodiq.pendulum, "now", lambda *args: wakeups["now"])
    replicas = _Replicas(settings.database_url)
    rng = random.Random(17)
    try:
        for _ in range(REPLICAS):
            replicas.start_one()
        # When 100 ticks fall due, periodiq waking before or after the replicas, and a fifth of the time one
        # replica is SIGKILLed during its pass and replaced
        for tick in TICKS:
            wakeups["now"] = periodiq.pendulum.instance(tick + timedelta(seconds=2))
            periodiq_first = rng.random() < 0.5
            if periodiq_first:
                _periodiq_sends(periodic, tick)
            replicas.tick(tick + timedelta(seconds=1), rng)
            if not periodiq_first:
                _periodiq_sends(periodic, tick)
            while len(replicas.live) < REPLICAS:
                replicas.start_one()
            broker.join(CSV_IMPORT, min_successes=2, idle_time=20, timeout=60_000)
    finally:
        replicas.stop()
        worker.stop()
        broker.close()
        runtime.close()

    # Then every tick is in the ledger once and ran exactly once, successfully
    with Session(pg_engine) as db:
        ticks = {tick.id: (tick.tick_at, tick.outcome) for tick in db.scalars(select(SchedulerTick))}
        runs = list(db.scalars(select(SchedulerRun)))
    assert sorted(at for at, _ in ticks.values()) == TICKS
    assert {outcome for _, outcome in ticks.values()} == {TickOutcome.ENQUEUED}
    assert Counter(ticks[run.tick_id][0] for run in runs if run.tick_id) == Counter(TICKS)
    assert len(runs) == len(TICKS)
    assert {run.status for run in runs} == {SchedulerRunStatus.SUCCEEDED}
    # And replicas were killed and replaced all along (seed 17 kills 10 or more)
    assert replicas.killed >= 10


def _periodiq_sends(replica: periodiq.Scheduler, moment: datetime) -> None:
    """What periodiq's loop does when it wakes at ``moment``: send each actor whose spec fires then."""
    now = periodiq.pendulum.instance(moment)
    replica.send_actors([a for a in replica.actors if a.options["periodic"].validate(now)], now=now)
