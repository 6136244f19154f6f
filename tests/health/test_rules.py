"""Each status rule of docs/health.md, flipped by one observation at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.health.rules import EndpointState, Observation, Status, Verdict, cron_interval, judge
from pipeline.health.sources import QueueStats
from pipeline.scheduling.jobs import find_job
from pipeline.settings import Settings
from tests.health.fakes import NOW, make_overview

ALIVE = QueueStats(ready=0, unacked=0, consumers=2)
DEAD = QueueStats(ready=0, unacked=0, consumers=0)


def observe(settings: Settings, scheduler_id: str = "csv-import", **changes: object) -> Observation:
    """A healthy scheduler (recent success, consumers present); ``changes`` override Observation fields,
    and ``overview`` is a dict of SchedulerOverview changes (None: no overview)."""
    overview_changes = changes.pop("overview", {})
    overview = (
        make_overview(settings, scheduler_id, **overview_changes)
        if isinstance(overview_changes, dict)
        else None
    )
    fields: dict[str, object] = {
        "job": find_job(settings, scheduler_id),
        "overview": overview,
        "queue": ALIVE,
        **changes,
    }
    return Observation(**fields)  # type: ignore[arg-type]


def verdict(settings: Settings, scheduler_id: str = "csv-import", **changes: object) -> Verdict:
    return judge(observe(settings, scheduler_id, **changes), settings, NOW)


def test_a_scheduler_that_succeeded_recently_with_consumers_is_running(settings: Settings) -> None:
    # Given a scheduler that succeeded a minute ago and has consumers
    # When it is judged
    result = verdict(settings)

    # Then it runs, healthy, with nothing to report
    assert result == Verdict(Status.RUNNING, ())
    assert result.healthy


def test_a_scheduler_stopped_by_an_operator_is_stopped_and_healthy(settings: Settings) -> None:
    # Given a stopped scheduler whose last success is old and whose runs failed
    result = verdict(
        settings,
        overview={
            "control": "STOPPED",
            "last_success_at": NOW - timedelta(days=3),
            "consecutive_failures": 9,
        },
    )

    # Then it is STOPPED and not unhealthy: an operator chose it
    assert result.status is Status.STOPPED
    assert result.healthy
    assert result.reasons == ("stopped by an operator",)


def test_schedulers_of_a_deployment_without_cron_ticks_are_stopped(settings: Settings) -> None:
    # Given SCHEDULER_ENABLED=false
    disabled = settings.model_copy(update={"scheduler_enabled": False})

    # When a scheduler is judged
    result = judge(observe(disabled), disabled, NOW)

    # Then it is STOPPED, healthy, and says why
    assert result.status is Status.STOPPED
    assert result.healthy
    assert result.reasons[0] == "SCHEDULER_ENABLED=false: cron ticks are off"


def test_a_paused_scheduler_is_paused_and_healthy(settings: Settings) -> None:
    # Given a paused scheduler with no consumers and nothing waiting, whose last success is old
    result = verdict(
        settings, overview={"control": "PAUSED", "last_success_at": NOW - timedelta(days=1)}, queue=DEAD
    )

    # Then it is PAUSED and healthy
    assert result.status is Status.PAUSED
    assert result.healthy
    assert result.reasons == ("paused by an operator",)


def test_messages_waiting_without_consumers_are_an_error_even_when_paused(settings: Settings) -> None:
    # Given a paused scheduler whose queue holds messages (handed over by other stages) and has no consumer
    result = verdict(
        settings, overview={"control": "PAUSED"}, queue=QueueStats(ready=3, unacked=0, consumers=0)
    )

    # Then it is in ERROR: pausing stops cron ticks, not the worker pool, and that work is stuck
    assert result.status is Status.ERROR
    assert "no consumers on queue csv-import while 3 message(s) wait: its worker is down" in result.reasons


def test_a_scheduler_that_never_ran_and_has_no_consumers_yet_is_starting(settings: Settings) -> None:
    # Given a scheduler that never ran and whose queue has no consumer yet and no message
    result = verdict(
        settings, overview={"last_run_at": None, "last_success_at": None, "recent_runs": 0}, queue=DEAD
    )

    # Then it is STARTING, which is healthy
    assert result.status is Status.STARTING
    assert result.healthy
    assert result.reasons == ("no run yet", "no consumers on queue csv-import yet")


def test_a_scheduler_whose_metrics_endpoint_is_up_but_that_never_ran_is_starting(settings: Settings) -> None:
    # Given a scheduler that never ran, whose worker answers its metrics endpoint
    result = verdict(
        settings,
        overview={"last_run_at": None, "last_success_at": None},
        endpoint=EndpointState(answered=1, total=1),
    )

    # Then it is STARTING
    assert result.status is Status.STARTING
    assert result.reasons == ("no run yet", "metrics endpoint up")


def test_a_delayed_message_counts_as_waiting(settings: Settings) -> None:
    # Given a scheduler that never ran, no consumers, and one retry waiting in its delay queue
    result = verdict(
        settings,
        overview={"last_run_at": None, "last_success_at": None},
        queue=DEAD,
        delayed=QueueStats(ready=1, unacked=0, consumers=0),
    )

    # Then nobody will ever run it: ERROR
    assert result.status is Status.ERROR
    assert "no consumers on queue csv-import while 1 message(s) wait: its worker is down" in result.reasons


@pytest.mark.parametrize(("failures", "expected"), [(2, Status.RUNNING), (3, Status.ERROR)])
def test_consecutive_failures_at_the_limit_are_an_error(
    settings: Settings, failures: int, expected: Status
) -> None:
    # Given a scheduler whose last runs failed, HEALTH_MAX_CONSECUTIVE_FAILURES=3
    result = verdict(
        settings,
        overview={"consecutive_failures": failures, "last_error": "ConnectError: refused"},
    )

    # Then three in a row is an ERROR that names the last error, two is not
    assert result.status is expected
    if expected is Status.ERROR:
        assert result.reasons == (
            "3 runs in a row failed, the limit is HEALTH_MAX_CONSECUTIVE_FAILURES=3 "
            "(last error: ConnectError: refused)",
        )


def test_no_consumers_on_the_queue_of_a_scheduler_that_ran_is_an_error(settings: Settings) -> None:
    # Given an active scheduler that has run, whose queue has lost its consumers (nothing waits yet)
    result = verdict(settings, queue=DEAD)

    # Then its worker is dead: ERROR
    assert result.status is Status.ERROR
    assert result.reasons == ("no consumers on queue csv-import: its worker is down",)


@pytest.mark.parametrize(("age_minutes", "expected"), [(29, Status.RUNNING), (31, Status.ERROR)])
def test_a_last_success_older_than_the_factor_times_the_cron_interval_is_an_error(
    settings: Settings, age_minutes: int, expected: Status
) -> None:
    # Given csv-import (every 10 minutes) and HEALTH_SUCCESS_INTERVAL_FACTOR=3: 30 minutes at most
    last_success = NOW - timedelta(minutes=age_minutes)

    # When its last success is that old
    result = verdict(settings, overview={"last_success_at": last_success, "last_run_at": last_success})

    # Then past 30 minutes it is in ERROR, with the figures
    assert result.status is expected
    if expected is Status.ERROR:
        assert result.reasons == (
            "last success (or resume) at 2026-01-05T11:29:00+00:00 is older than "
            "HEALTH_SUCCESS_INTERVAL_FACTOR=3 x its 600 s interval (1800 s)",
        )


def test_a_scheduler_resumed_after_a_long_pause_is_not_judged_by_its_old_success(settings: Settings) -> None:
    # Given csv-import last succeeded two hours ago, then was paused, and was resumed five minutes ago
    result = verdict(
        settings,
        overview={
            "last_success_at": NOW - timedelta(hours=2),
            "last_run_at": NOW - timedelta(hours=2),
            "control_changed_at": NOW - timedelta(minutes=5),
        },
    )

    # Then it is running: its age counts from the resume
    assert result.status is Status.RUNNING


def test_the_newer_last_success_of_the_metrics_and_the_database_counts(settings: Settings) -> None:
    # Given a database whose last success is old, and worker metrics with a recent one
    result = verdict(
        settings,
        overview={"last_success_at": NOW - timedelta(hours=2)},
        metrics_last_success=NOW - timedelta(minutes=5),
    )

    # Then the recent one counts
    assert result.status is Status.RUNNING


@pytest.mark.parametrize(("lag", "expected"), [(3600.0, Status.RUNNING), (3601.0, Status.ERROR)])
def test_a_stage_lag_over_the_limit_is_an_error(settings: Settings, lag: float, expected: Status) -> None:
    # Given import processing whose oldest waiting import is that old, HEALTH_MAX_LAG_SECONDS=3600
    result = verdict(settings, "import-processing", lag_seconds=lag)

    # Then above the limit it is in ERROR
    assert result.status is expected
    if expected is Status.ERROR:
        assert result.reasons == ("stage lag 3601 s exceeds HEALTH_MAX_LAG_SECONDS=3600",)


def test_an_unreachable_metrics_endpoint_with_consumers_present_degrades_but_stays_running(
    settings: Settings,
) -> None:
    # Given a worker whose metrics endpoint does not answer, but which consumes its queue
    result = verdict(
        settings,
        endpoint=EndpointState(answered=0, total=1, failures=("http://w:9191/metrics: connection refused",)),
    )

    # Then it is still RUNNING and healthy, and the reason says the worker is alive
    assert result.status is Status.RUNNING
    assert result.reasons == (
        "metrics endpoint unreachable: http://w:9191/metrics: connection refused; "
        "2 consumer(s) on csv-import: the worker is alive",
    )


def test_an_unreachable_metrics_endpoint_without_consumers_is_a_dead_worker(settings: Settings) -> None:
    # Given a worker whose metrics endpoint does not answer and whose queue has no consumer
    result = verdict(
        settings,
        queue=DEAD,
        endpoint=EndpointState(answered=0, total=1, failures=("http://w:9191/metrics: connection refused",)),
    )

    # Then the worker is dead: ERROR, with both facts
    assert result.status is Status.ERROR
    assert result.reasons == (
        "no consumers on queue csv-import: its worker is down",
        "metrics endpoint unreachable: http://w:9191/metrics: connection refused",
    )


def test_one_replica_of_two_unreachable_is_reported_with_its_count(settings: Settings) -> None:
    # Given two metrics endpoints for one scheduler, one of which answers
    result = verdict(settings, endpoint=EndpointState(answered=1, total=2, failures=("http://b: timeout",)))

    # Then it runs, and the reason counts the unreachable one
    assert result.status is Status.RUNNING
    assert result.reasons == ("metrics endpoint unreachable (1 of 2): http://b: timeout",)


def test_an_unreadable_database_is_an_error(settings: Settings) -> None:
    # Given no overview, because the database did not answer
    result = verdict(settings, overview=None, database_error="database: no answer within 300 ms")

    # Then the scheduler is in ERROR: without the database no stage works either
    assert result == Verdict(Status.ERROR, ("database unreachable: database: no answer within 300 ms",))


def test_an_unreadable_rabbitmq_leaves_consumers_unjudged(settings: Settings) -> None:
    # Given RabbitMQ's management API did not answer
    result = verdict(settings, queue=None, rabbitmq_error="RabbitMQ: HTTP 401")

    # Then the scheduler is judged on the rest, with a note
    assert result.status is Status.RUNNING
    assert result.reasons == ("RabbitMQ management API unreadable, consumers unknown: RabbitMQ: HTTP 401",)


def test_an_unreachable_scheduler_process_is_noted(settings: Settings) -> None:
    # Given the scheduler process's metrics endpoint does not answer
    result = verdict(
        settings, scheduler_process=EndpointState(answered=0, total=1, failures=("http://s:9192: refused",))
    )

    # Then the scheduler still runs (its last success will tell), with a note
    assert result.status is Status.RUNNING
    assert result.reasons == (
        "scheduler process metrics endpoint unreachable, cron ticks may not be sent: http://s:9192: refused",
    )


def test_several_errors_are_all_reported(settings: Settings) -> None:
    # Given failures, a dead worker, an old success and a large lag at once
    old = NOW - timedelta(days=1)
    result = verdict(
        settings,
        "session-processing",
        overview={"consecutive_failures": 4, "last_success_at": old},
        queue=DEAD,
        lag_seconds=7200.0,
    )

    # Then every one is a reason
    assert result.status is Status.ERROR
    assert len(result.reasons) == 4


def test_the_cron_interval_is_the_gap_between_the_next_two_fire_times(settings: Settings) -> None:
    # Given a weekday-morning cron, judged on a Friday afternoon
    weekday = find_job(settings.model_copy(update={"csv_import_interval": "0 9 * * 1-5"}), "csv-import")
    friday = datetime(2026, 1, 9, 15, 0, tzinfo=UTC)

    # Then the interval is the gap between Monday's and Tuesday's ticks
    assert cron_interval(weekday, "UTC", friday) == timedelta(days=1)
    assert cron_interval(find_job(settings, "csv-import"), "UTC", NOW) == timedelta(minutes=10)
