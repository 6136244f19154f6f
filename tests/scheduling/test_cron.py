"""Cron evaluation: Sunday day-of-week specs (which periodiq 0.14.0 never fires) and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.scheduling.cron import CronError, CronSchedule, normalize_cron

SATURDAY_NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SUNDAY_MIDNIGHT = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("expression", ["@weekly", "0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * SUN"])
def test_sunday_specs_fire_on_sunday(expression: str) -> None:
    # Given a weekly spec written in any of the ways cron allows
    schedule = CronSchedule(expression)

    # When the next fire time after a Saturday is asked for
    fire = schedule.next_after(SATURDAY_NOON)

    # Then it is the next Sunday at midnight
    assert fire == SUNDAY_MIDNIGHT
    assert fire.isoweekday() == 7


def test_a_sunday_spec_fires_within_a_window_that_holds_a_sunday() -> None:
    # Given a week of time
    week_start = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # a Monday

    # When the ticks of "every Sunday at 00:00" in it are listed
    fires = CronSchedule("0 0 * * sun").fires_between(week_start, week_start.replace(day=30))

    # Then there is exactly one, on the Sunday
    assert fires == [SUNDAY_MIDNIGHT]


def test_macros_are_expanded_and_bad_expressions_are_named() -> None:
    assert normalize_cron("@hourly") == "0 * * * *"
    assert normalize_cron("  */5   *  * * * ") == "*/5 * * * *"
    with pytest.raises(CronError, match="'61 \\* \\* \\* \\*'"):
        normalize_cron("61 * * * *")


def test_a_fixed_time_job_in_the_skipped_hour_fires_once_when_dst_starts() -> None:
    # Given a daily 02:30 job in Amsterdam, where 2026-03-29 02:00 CET jumps to 03:00 CEST
    schedule = CronSchedule("30 2 * * *", "Europe/Amsterdam")

    # When the ticks of that weekend are listed
    fires = schedule.fires_between(
        datetime(2026, 3, 28, 0, 0, tzinfo=UTC), datetime(2026, 3, 30, 0, 0, tzinfo=UTC)
    )

    # Then the job runs once each day: on the DST day right after the gap (03:00 CEST = 01:00 UTC)
    assert fires == [datetime(2026, 3, 28, 1, 30, tzinfo=UTC), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)]


def test_a_fixed_time_job_in_the_repeated_hour_fires_once_when_dst_ends() -> None:
    # Given a daily 02:30 job in Amsterdam, where 2026-10-25 03:00 CEST falls back to 02:00 CET
    schedule = CronSchedule("30 2 * * *", "Europe/Amsterdam")

    # When the ticks of that day are listed
    fires = schedule.fires_between(
        datetime(2026, 10, 24, 22, 0, tzinfo=UTC), datetime(2026, 10, 25, 22, 0, tzinfo=UTC)
    )

    # Then 02:30 happens twice on the wall clock but the job runs once
    assert fires == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]


def test_an_interval_job_follows_the_wall_clock_through_the_repeated_hour() -> None:
    # Given a half-hourly job in Amsterdam on the day DST ends
    schedule = CronSchedule("*/30 * * * *", "Europe/Amsterdam")

    # When the ticks between 01:45 CEST and 03:15 CET are listed
    fires = schedule.fires_between(
        datetime(2026, 10, 24, 23, 45, tzinfo=UTC), datetime(2026, 10, 25, 2, 15, tzinfo=UTC)
    )

    # Then it keeps its half-hour rhythm in real time, through both 02:xx hours: no gap, no double fire
    assert fires == [
        datetime(2026, 10, 25, 0, 0, tzinfo=UTC),  # 02:00 CEST
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST
        datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # 02:00 CET
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2026, 10, 25, 2, 0, tzinfo=UTC),  # 03:00 CET
    ]


def test_ticks_are_read_in_the_configured_zone() -> None:
    # Given a 09:00 job read in New York
    schedule = CronSchedule("0 9 * * *", "America/New_York")

    # Then it fires at 14:00 UTC in winter (EST, UTC-5)
    assert schedule.next_after(datetime(2026, 12, 1, 0, 0, tzinfo=UTC)) == datetime(
        2026, 12, 1, 14, 0, tzinfo=UTC
    )
