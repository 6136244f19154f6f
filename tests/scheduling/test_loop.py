"""The scheduler loop, with the clock driven by the test: steady ticks, catch-up, and broker outages."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipeline.db.models import SchedulerTick
from pipeline.metrics import SCHEDULER_LOOP_ERRORS
from pipeline.scheduling.loop import SchedulerLoop
from pipeline.scheduling.runs import recorded_run
from pipeline.scheduling.ticks import TickResult
from pipeline.settings import Settings
from tests.scheduling.conftest import RecordingPublisher, ledger_tick_only

START = datetime(2026, 11, 26, 12, 0, 30, tzinfo=UTC)


def _only_csv_every_ten_minutes(settings: Settings, **changes: object) -> Settings:
    """Settings where csv-import ticks every 10 minutes and every other job only yearly."""
    yearly = "0 0 1 1 *"
    return settings.model_copy(
        update={
            "csv_import_interval": "*/10 * * * *",
            "import_processing_interval": yearly,
            "session_processing_interval": yearly,
            "batch_processing_interval": yearly,
            "batch_processing_check_interval": yearly,
            **changes,
        }
    )


def _work_off(engine: Engine, publisher: RecordingPublisher) -> None:
    """Run every sent tick the way a worker does, so that the next tick does not overlap it."""
    while publisher.sent:
        message = publisher.sent.pop(0)
        with recorded_run(
            engine, "csv-import", message.kwargs["tick_id"], "worker", claim=ledger_tick_only
        ) as run:
            assert run is not None
        publisher.done.append(message)


def _ticks(engine: Engine) -> list[tuple[datetime, str | None]]:
    with Session(engine) as db:
        return [(tick.tick_at, tick.detail) for tick in db.scalars(select(SchedulerTick).order_by("tick_at"))]


def test_each_tick_is_sent_when_it_falls_due(
    database: tuple[Engine, Settings], publisher: RecordingPublisher
) -> None:
    engine, base = database
    # Given a loop started at 12:00:30 with no history and no catch-up
    loop = SchedulerLoop(engine, _only_csv_every_ten_minutes(base, scheduler_catchup_window=0), publisher)

    # When passes run at 12:00:30, 12:05, 12:10:01, 12:10:30 and 12:20:02
    for moment in (
        START,
        START.replace(minute=5),
        START.replace(minute=10, second=1),
        START.replace(minute=10),
        START.replace(minute=20, second=2),
    ):
        loop.run_pass(moment)
        _work_off(engine, publisher)

    # Then the 12:00, 12:10 and 12:20 ticks were each sent once
    assert [tick for tick, _ in _ticks(engine)] == [START.replace(minute=m, second=0) for m in (0, 10, 20)]
    assert len(publisher.done) == 3


def test_missed_ticks_are_caught_up_once_within_the_window(
    database: tuple[Engine, Settings], publisher: RecordingPublisher
) -> None:
    engine, base = database
    # Given the last tick recorded at 09:00, and a catch-up window of one hour
    settings = _only_csv_every_ten_minutes(base, scheduler_catchup_window=3600)
    loop = SchedulerLoop(engine, settings, publisher)
    loop.run_pass(datetime(2026, 11, 26, 9, 0, 5, tzinfo=UTC))
    publisher.sent.clear()

    # When a scheduler starts again at 12:04 after three hours without one
    decisions = loop.run_pass(datetime(2026, 11, 26, 12, 4, tzinfo=UTC))

    # Then the newest missed tick (12:00) runs once, saying it is a catch-up of the six due in the window
    assert [decision.result for decision in decisions] == [TickResult.ENQUEUED]
    assert len(publisher.sent) == 1
    tick_at, detail = _ticks(engine)[-1]
    assert tick_at == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert detail == "catch-up: 6 due since 2026-11-26T11:10:00+00:00, the newest runs once"


def test_ticks_older_than_the_catch_up_window_are_not_run(
    database: tuple[Engine, Settings], publisher: RecordingPublisher
) -> None:
    engine, base = database
    # Given an hourly job last due at 12:00, a catch-up window of 10 minutes
    settings = _only_csv_every_ten_minutes(
        base, csv_import_interval="0 * * * *", scheduler_catchup_window=600
    )

    # When a scheduler starts at 12:30, then nothing is sent
    assert SchedulerLoop(engine, settings, publisher).run_pass(START.replace(minute=30)) == []
    assert publisher.sent == []


def test_a_broker_outage_delays_a_tick_but_does_not_lose_it(
    database: tuple[Engine, Settings], publisher: RecordingPublisher
) -> None:
    engine, base = database
    # Given a running loop whose clock the test moves, and RabbitMQ down at 12:00
    now = [START]
    loop = SchedulerLoop(engine, _only_csv_every_ten_minutes(base), publisher, clock=lambda: now[0])
    publisher.down = True
    errors_before = SCHEDULER_LOOP_ERRORS._value.get()
    stop = threading.Event()
    runner = threading.Thread(target=loop.run_forever, args=(stop,))
    runner.start()
    try:
        # When passes fail for a while, then RabbitMQ comes back at 12:01
        deadline = threading.Event()
        while SCHEDULER_LOOP_ERRORS._value.get() == errors_before and not deadline.wait(0.05):
            pass
        now[0] = START.replace(minute=1)
        publisher.down = False
        while not publisher.sent and not deadline.wait(0.05):
            pass
    finally:
        stop.set()
        runner.join(timeout=10)

    # Then the loop survived the outage, counted it, and sent the 12:00 tick once
    assert not runner.is_alive()
    assert SCHEDULER_LOOP_ERRORS._value.get() > errors_before
    assert [tick for tick, _ in _ticks(engine)] == [START.replace(second=0)]
    assert len(publisher.sent) == 1


def test_the_loop_sleeps_until_the_next_fire_time(
    database: tuple[Engine, Settings], publisher: RecordingPublisher
) -> None:
    engine, base = database
    loop = SchedulerLoop(engine, _only_csv_every_ten_minutes(base), publisher)
    # At 12:09:30 the next tick is 30 s away; far from any tick, the sleep is capped
    assert loop.seconds_until_next(START.replace(minute=9)) == 30
    assert loop.seconds_until_next(START.replace(minute=0, second=1)) == 60
