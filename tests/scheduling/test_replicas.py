"""Several scheduler replicas against one PostgreSQL and one RabbitMQ: each tick is enqueued exactly once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from urllib.parse import urlsplit

import httpx
import pika
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipeline.broker import build_broker
from pipeline.db.engine import create_db_engine
from pipeline.db.enums import TickOutcome
from pipeline.db.models import SchedulerTick
from pipeline.metrics import SCHEDULER_LOOP_ERRORS
from pipeline.queues import CSV_IMPORT
from pipeline.scheduling.control import apply_action
from pipeline.scheduling.loop import SchedulerLoop
from pipeline.settings import Settings, load_settings
from tests.scheduling.conftest import RecordingPublisher
from tests.scheduling.tcp_proxy import TcpProxy
from tests.services import RABBITMQ_URL, require_rabbitmq

YEARLY = "0 0 1 1 *"
#: Only csv-import ticks (every 10 minutes); overlap never blocks, since no worker runs the ticks here.
SCHEDULE = {
    "csv_import_interval": "*/10 * * * *",
    "import_processing_interval": YEARLY,
    "session_processing_interval": YEARLY,
    "batch_processing_interval": YEARLY,
    "batch_processing_check_interval": YEARLY,
    "scheduler_overlap_timeout": 60,
}
MOMENTS = [datetime(2026, 11, 26, 12, minute, 1, tzinfo=UTC) for minute in range(0, 60, 10)]
REPLICAS = 3


def _queue_depth(queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        return int(connection.channel().queue_declare(queue, durable=True, passive=True).method.message_count)
    finally:
        connection.close()


@pytest.fixture
def csv_import_queue() -> Iterator[None]:
    """The csv-import queue, declared and empty, and no worker consuming it."""
    require_rabbitmq()
    broker = build_broker(load_settings(rabbitmq_url=RABBITMQ_URL))
    assert isinstance(broker, RabbitmqBroker)
    broker.declare_queue(CSV_IMPORT, ensure=True)
    broker.close()
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    connection.channel().queue_purge(CSV_IMPORT)
    yield
    connection.channel().queue_purge(CSV_IMPORT)
    connection.close()


def _replica(
    database_url: str,
    name: str,
    start: Barrier,
    done: Barrier,
    results: multiprocessing.Queue[dict[str, int]],
) -> None:
    """One scheduler replica whose clock is the test's: a pass at each moment, in step with the others."""
    settings = load_settings(
        database_url=database_url, rabbitmq_url=RABBITMQ_URL, scheduler_instance_id=name, **SCHEDULE
    )
    broker = build_broker(settings)
    loop = SchedulerLoop(create_db_engine(settings), settings, broker.enqueue)
    outcomes: Counter[str] = Counter()
    for moment in MOMENTS:
        start.wait(timeout=60)
        for decision in loop.run_pass(moment):
            outcomes[decision.result.value] += 1
        done.wait(timeout=60)
    broker.close()
    results.put(dict(outcomes))


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_three_replicas_enqueue_each_tick_once_and_all_honour_pause(
    pg_engine: Engine, pg_settings: Settings, csv_import_queue: None
) -> None:
    # Given three scheduler processes sharing the database and RabbitMQ, driven through six 10-minute ticks
    context = multiprocessing.get_context("spawn")
    start, done = context.Barrier(REPLICAS + 1), context.Barrier(REPLICAS + 1)
    results: multiprocessing.Queue[dict[str, int]] = context.Queue()
    replicas = [
        context.Process(
            target=_replica, args=(pg_settings.database_url, f"replica-{n}", start, done, results)
        )
        for n in range(REPLICAS)
    ]
    for replica in replicas:
        replica.start()
    settings = pg_settings.model_copy(update=SCHEDULE)
    publisher = RecordingPublisher()

    # When an operator pauses csv-import before the 12:30 tick and resumes it before the 12:50 tick
    for moment in MOMENTS:
        if moment.minute == 30:
            apply_action(pg_engine, settings, "pause", "csv-import", publish=publisher, requested_by="test")
        if moment.minute == 50:
            apply_action(pg_engine, settings, "resume", "csv-import", publish=publisher, requested_by="test")
        start.wait(timeout=60)
        done.wait(timeout=60)
    totals: Counter[str] = Counter()
    for _ in replicas:
        totals.update(results.get(timeout=60))
    for replica in replicas:
        replica.join(timeout=30)

    # Then each tick was recorded once: four sent, the two while paused skipped, by whichever replica won
    with Session(pg_engine) as db:
        ticks = [
            (tick.tick_at, tick.outcome) for tick in db.scalars(select(SchedulerTick).order_by("tick_at"))
        ]
    assert ticks == [
        (
            moment.replace(second=0),
            TickOutcome.SKIPPED_PAUSED if moment.minute in (30, 40) else TickOutcome.ENQUEUED,
        )
        for moment in MOMENTS
    ]
    # And RabbitMQ holds exactly one message per sent tick; every other replica sent nothing
    assert _queue_depth(CSV_IMPORT) == 4
    # (a replica that reads the tick already recorded does not even try, so duplicates are at most 2 per tick)
    assert (totals["enqueued"], totals["skipped_paused"]) == (4, 2)
    assert totals["duplicate"] <= (REPLICAS - 1) * len(MOMENTS)
    assert publisher.sent == []
    assert all(replica.exitcode == 0 for replica in replicas)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _scrape(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return ""


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_scheduler_processes_catch_up_once_and_stop_on_sigterm(
    pg_engine: Engine, pg_settings: Settings, csv_import_queue: None
) -> None:
    # Given two `livedash scheduler` processes started together, with csv-import due every minute
    ports = [_free_port(), _free_port()]
    base_env = {
        **os.environ,
        "DATABASE_URL": pg_settings.database_url,
        "RABBITMQ_URL": RABBITMQ_URL,
        **{name.upper(): str(value) for name, value in SCHEDULE.items()},
        "CSV_IMPORT_INTERVAL": "* * * * *",
    }
    schedulers = [
        subprocess.Popen(
            [sys.executable, "-m", "pipeline", "scheduler"],
            env={**base_env, "SCHEDULER_INSTANCE_ID": name, "SCHEDULER_METRICS_PORT": str(port)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for name, port in zip(("scheduler-a", "scheduler-b"), ports, strict=True)
    ]
    try:
        # When one has sent the missed minute (start-up catch-up) and the other is up and serving metrics
        deadline = time.monotonic() + 60
        metrics = ["", ""]
        while time.monotonic() < deadline:
            metrics = [_scrape(port) for port in ports]
            with Session(pg_engine) as db:
                ticks = db.scalars(select(SchedulerTick)).all()
            if ticks and all("livedash_scheduler_loop_errors_total 0.0" in text for text in metrics):
                break
            time.sleep(0.2)
    finally:
        for scheduler in schedulers:
            scheduler.send_signal(signal.SIGTERM)
        outputs = [scheduler.communicate(timeout=30)[0].decode(errors="replace") for scheduler in schedulers]

    # Then the minute's tick was sent once between them, as many messages as sent ticks are queued
    with Session(pg_engine) as db:
        ticks = db.scalars(select(SchedulerTick)).all()
    sent = [tick for tick in ticks if tick.outcome == TickOutcome.ENQUEUED]
    assert len(sent) >= 1, outputs
    assert len({tick.tick_at for tick in ticks}) == len(ticks)
    assert all(tick.tick_at > datetime.now(UTC) - timedelta(minutes=3) for tick in ticks)
    assert _queue_depth(CSV_IMPORT) == len(sent)
    # And the scheduler process exposes its own metrics, and both stopped cleanly on SIGTERM
    assert all("# TYPE livedash_scheduler_ticks_total counter" in text for text in metrics)
    assert [scheduler.returncode for scheduler in schedulers] == [0, 0], outputs


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_a_scheduler_outlives_a_rabbitmq_outage_and_sends_the_tick_it_missed(
    pg_engine: Engine, pg_settings: Settings, csv_import_queue: None
) -> None:
    # Given a scheduler whose connection to RabbitMQ goes through a proxy the test can cut
    with TcpProxy(("127.0.0.1", 5672)) as proxy:
        settings = load_settings(
            database_url=pg_settings.database_url,
            # The test's vhost, through the proxy
            rabbitmq_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}{urlsplit(RABBITMQ_URL).path}",
            **SCHEDULE,
        )
        broker = build_broker(settings)
        now = [MOMENTS[0]]
        loop = SchedulerLoop(pg_engine, settings, broker.enqueue, clock=lambda: now[0])
        loop.run_pass(now[0])  # connected: the 12:00 tick is sent
        errors_before = SCHEDULER_LOOP_ERRORS._value.get()

        # When RabbitMQ becomes unreachable just before the 12:10 tick
        proxy.cut()
        now[0] = MOMENTS[1]
        stop = threading.Event()
        runner = threading.Thread(target=loop.run_forever, args=(stop,))
        runner.start()
        try:
            deadline = time.monotonic() + 60
            while SCHEDULER_LOOP_ERRORS._value.get() == errors_before and time.monotonic() < deadline:
                time.sleep(0.1)
            failed_passes = SCHEDULER_LOOP_ERRORS._value.get() - errors_before
            # and comes back a little later
            proxy.restore()
            while _queue_depth(CSV_IMPORT) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            runner.join(timeout=60)
            broker.close()

    # Then the scheduler kept running through the outage, counted it, and sent the 12:10 tick once it could
    assert not runner.is_alive()
    assert failed_passes >= 1
    with Session(pg_engine) as db:
        ticks = [
            (tick.tick_at, tick.outcome) for tick in db.scalars(select(SchedulerTick).order_by("tick_at"))
        ]
    assert ticks == [(moment.replace(second=0), TickOutcome.ENQUEUED) for moment in MOMENTS[:2]]
    assert _queue_depth(CSV_IMPORT) == 2
