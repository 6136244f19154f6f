"""periodiq beside ``livedash scheduler``: periodiq fires our specs as cronsim does (Sunday included), and any
mix of periodiq replicas and scheduler replicas runs each tick exactly once.

The side-by-side test drives both kinds through several ticks with a test clock, on the real RabbitMQ (the
vhost of ``TEST_RABBITMQ_URL``) and the real PostgreSQL, with a real Dramatiq worker running the tick actor:
the ticks are those of a Sunday-only spec, which periodiq's own cron parser never fires.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import periodiq
import pika
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipeline.broker import build_broker
from pipeline.db.enums import SchedulerRunStatus
from pipeline.db.models import SchedulerRun, SchedulerTick
from pipeline.publishing import Publisher
from pipeline.queues import CSV_IMPORT
from pipeline.scheduling.cron import CronSchedule
from pipeline.scheduling.jobs import JOBS
from pipeline.scheduling.loop import SchedulerLoop
from pipeline.scheduling.periodiq_specs import PeriodiqSchedule, periodic_options
from pipeline.settings import Settings
from pipeline.stages.actors import declare_actors
from pipeline.stages.runtime import BrokerDispatch, StageRuntime
from tests.services import RABBITMQ_URL, require_rabbitmq

#: A Thursday; the fortnight from it has two Sundays.
FORTNIGHT_START = datetime(2026, 11, 26, tzinfo=UTC)
SPECS = [
    ("*/10 * * * *", "UTC"),
    ("0 9 * * 0", "UTC"),
    ("30 2 * * sun", "UTC"),
    ("0 0 * * 7", "UTC"),
    ("@weekly", "UTC"),
    ("15 6 * * 1-5", "Europe/Berlin"),
    ("0 8 1 * 0", "UTC"),
]


def _minutes(start: datetime, days: int) -> Iterator[datetime]:
    for minute in range(days * 24 * 60):
        yield start + timedelta(minutes=minute)


@pytest.mark.parametrize(("expression", "zone"), SPECS)
def test_periodiq_fires_our_specs_in_the_very_minutes_cronsim_does(expression: str, zone: str) -> None:
    # Given one of our specs as the periodic option periodiq reads, and the fire times cronsim gives
    spec = PeriodiqSchedule(expression, zone)
    end = FORTNIGHT_START + timedelta(days=14)
    expected = set(CronSchedule(expression, zone).fires_between(FORTNIGHT_START - timedelta(minutes=1), end))

    # When periodiq's loop asks, minute by minute over a fortnight, whether the spec fires (waking up to a
    # second late), then it fires in exactly those minutes
    fired = {
        moment for moment in _minutes(FORTNIGHT_START, 14) if spec.validate(moment + timedelta(seconds=1))
    }
    assert fired == {moment for moment in expected if moment < end}
    assert fired

    # And the next wake-up it computes from each fire time is the next fire time
    ordered = sorted(fired)
    assert [spec.next_valid_date(moment) for moment in ordered[:-1]] == ordered[1:]


def test_periodiqs_own_parser_never_fires_a_sunday_spec_that_ours_fires() -> None:
    # Given a Sunday spec parsed by periodiq itself, and the same spec as our option
    own, ours = periodiq.cron("0 9 * * 0"), PeriodiqSchedule("0 9 * * 0", "UTC")
    sunday_nine = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)

    # Then periodiq's parse would never send it, which is why the option is ours
    assert not any(own.validate(moment) for moment in _minutes(FORTNIGHT_START, 14))
    assert ours.validate(sunday_nine)


def test_every_tick_actor_carries_our_spec_as_its_periodic_option(pg_settings: Settings) -> None:
    settings = pg_settings.model_copy(update={"csv_import_interval": "0 9 * * sun"})
    options = {job.id: periodic_options(settings, job) for job in JOBS}
    assert str(options["csv-import"]["periodic"]) == "0 9 * * sun (UTC)"
    assert all(isinstance(option["periodic"], PeriodiqSchedule) for option in options.values())
    # Without cron ticks in this deployment, periodiq-aware tools find no periodic actor at all
    disabled = settings.model_copy(update={"scheduler_enabled": False})
    assert all(periodic_options(disabled, job) == {} for job in JOBS)


# --- side by side ------------------------------------------------------------------------------------------

SUNDAY = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TICKS = [SUNDAY + timedelta(minutes=10 * n) for n in range(5)]
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


def _purge(queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        connection.channel().queue_purge(queue)
    finally:
        connection.close()


@pytest.fixture
def side_by_side(pg_settings: Settings) -> Iterator[Settings]:
    require_rabbitmq()
    settings = pg_settings.model_copy(update={**SCHEDULE, "rabbitmq_url": RABBITMQ_URL})
    broker = build_broker(settings)
    assert isinstance(broker, RabbitmqBroker)
    broker.declare_queue(CSV_IMPORT, ensure=True)
    broker.close()
    _purge(CSV_IMPORT)
    yield settings
    _purge(CSV_IMPORT)


def _periodiq_replica(broker: dramatiq.Broker) -> periodiq.Scheduler:
    return periodiq.Scheduler(actors=[a for a in broker.actors.values() if "periodic" in a.options])


def _periodiq_sends(replica: periodiq.Scheduler, moment: datetime) -> None:
    """What periodiq's loop does when it wakes at ``moment``: send each actor whose spec fires then."""
    now = periodiq.pendulum.instance(moment)
    replica.send_actors([a for a in replica.actors if a.options["periodic"].validate(now)], now=now)


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_periodiq_and_scheduler_replicas_side_by_side_run_each_tick_once(
    pg_engine: Engine, side_by_side: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = side_by_side
    # Given a worker running the tick actors, two periodiq replicas and two `livedash scheduler` replicas
    broker = build_broker(settings)
    runtime = StageRuntime(settings, dispatch=BrokerDispatch(broker.enqueue), engine=pg_engine)
    declare_actors(broker, settings, lambda: runtime)
    periodiq_replicas = [_periodiq_replica(broker), _periodiq_replica(broker)]
    publishers = [Publisher(settings), Publisher(settings)]
    loops = [
        SchedulerLoop(pg_engine, settings.model_copy(update={"scheduler_instance_id": f"s{n}"}), publish)
        for n, publish in enumerate(publishers)
    ]
    worker = dramatiq.Worker(broker, queues={CSV_IMPORT}, worker_threads=2, worker_timeout=100)
    worker.start()
    wakeups: dict[str, Any] = {}
    # periodiq's middleware drops a message sent more than 30 s before "now": now is the test's clock
    monkeypatch.setattr(periodiq.pendulum, "now", lambda *args: wakeups["now"])
    try:
        # When five Sunday ticks fall due, each sender waking in a different order at each
        for number, tick in enumerate(TICKS):
            wakeups["now"] = periodiq.pendulum.instance(tick + timedelta(seconds=2))
            senders: list[periodiq.Scheduler | SchedulerLoop] = [
                periodiq_replicas[0],
                loops[0],
                periodiq_replicas[1],
                loops[1],
            ]
            for sender in senders[number % 4 :] + senders[: number % 4]:
                if isinstance(sender, SchedulerLoop):
                    sender.run_pass(tick + timedelta(seconds=1))
                else:
                    _periodiq_sends(sender, tick)
            broker.join(CSV_IMPORT, timeout=60_000)
    finally:
        worker.stop()
        broker.close()
        for publisher in publishers:
            publisher.close()
        runtime.close()

    # Then each tick is in the ledger once and ran exactly once, successfully, against its ledger entry
    with Session(pg_engine) as db:
        ticks = {tick.id: tick.tick_at for tick in db.scalars(select(SchedulerTick))}
        runs = list(db.scalars(select(SchedulerRun)))
    assert sorted(ticks.values()) == TICKS
    assert Counter(ticks[run.tick_id] for run in runs if run.tick_id) == Counter(TICKS)
    assert len(runs) == len(TICKS)
    assert {run.status for run in runs} == {SchedulerRunStatus.SUCCEEDED}


@pytest.mark.rabbitmq
def test_periodiq_starts_on_the_pipelines_actors_and_lists_our_specs(tmp_path: Path) -> None:
    # Given `periodiq pipeline.actors`, as an operator would start it, on the test vhost
    require_rabbitmq()
    env = {
        **os.environ,
        "RABBITMQ_URL": RABBITMQ_URL,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "CSV_IMPORT_INTERVAL": "0 9 * * sun",
        "SCHEDULER_TIMEZONE": "Europe/Berlin",
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("periodiq")), "pipeline.actors"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # When it has started, then it lists every tick actor with our spec, read in SCHEDULER_TIMEZONE
    output = ""
    try:
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while time.monotonic() < deadline and "batch_check_tick" not in output:
            output += process.stdout.readline().decode(errors="replace")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    assert "0 9 * * sun (Europe/Berlin)" in output, output
    for job in JOBS:
        assert f"{job.tick.name}@{job.queue}" in output, output
