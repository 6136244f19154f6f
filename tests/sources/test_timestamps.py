"""Parsing the naive local timestamps of the CSV and transcripts into aware UTC datetimes."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pipeline.sources.timestamps import TimestampError, parse_local_timestamp

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NEW_YORK = ZoneInfo("America/New_York")
ZULU = ZoneInfo("UTC")


def utc(
    year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def test_the_sample_format_is_read_as_wall_clock_time_in_the_company_zone() -> None:
    # Given the CSV's timestamp of the first sample row, and a company in the Netherlands (CEST, UTC+2)
    raw = "30.04.2025 11:38:14"

    # When I parse it
    parsed = parse_local_timestamp(raw, AMSTERDAM)

    # Then I expect the same instant in UTC, as an aware datetime in UTC
    assert parsed == utc(2025, 4, 30, 9, 38, 14)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        pytest.param(AMSTERDAM, utc(2025, 1, 15, 9, 0, 0), id="Amsterdam in winter, UTC+1"),
        pytest.param(NEW_YORK, utc(2025, 1, 15, 15, 0, 0), id="New York in winter, UTC-5"),
        pytest.param(ZULU, utc(2025, 1, 15, 10, 0, 0), id="UTC"),
    ],
)
def test_the_same_wall_clock_time_is_a_different_instant_in_each_zone(
    zone: ZoneInfo, expected: datetime
) -> None:
    # Given a winter timestamp
    raw = "15.01.2025 10:00:00"

    # When I parse it in the company's zone
    parsed = parse_local_timestamp(raw, zone)

    # Then I expect the instant that wall-clock time is in that zone
    assert parsed == expected


def test_summer_time_applies_in_new_york() -> None:
    # Given a summer timestamp of a company in New York (EDT, UTC-4)
    raw = "30.04.2025 11:38:14"

    # When I parse it
    parsed = parse_local_timestamp(raw, NEW_YORK)

    # Then I expect four hours added
    assert parsed == utc(2025, 4, 30, 15, 38, 14)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("01.05.2025 09:05:07", utc(2025, 5, 1, 9, 5, 7), id="two digits everywhere"),
        pytest.param("1.5.2025 9:5:7", utc(2025, 5, 1, 9, 5, 7), id="one digit everywhere"),
        pytest.param("1.05.2025 09:5:07", utc(2025, 5, 1, 9, 5, 7), id="mixed digits"),
        pytest.param("01-05-2025 09:05:07", utc(2025, 5, 1, 9, 5, 7), id="dash separator"),
        pytest.param("01/05/2025 09:05:07", utc(2025, 5, 1, 9, 5, 7), id="slash separator, still day first"),
        pytest.param("01.05.2025 09:05", utc(2025, 5, 1, 9, 5, 0), id="no seconds"),
        pytest.param("  01.05.2025 09:05:07\t\n", utc(2025, 5, 1, 9, 5, 7), id="surrounding whitespace"),
        pytest.param("01.05.2025   09:05:07", utc(2025, 5, 1, 9, 5, 7), id="several spaces before the time"),
        pytest.param("01.05.2025 00:00:00", utc(2025, 5, 1, 0, 0, 0), id="midnight"),
        pytest.param("31.12.2025 23:59:59", utc(2025, 12, 31, 23, 59, 59), id="last second of the year"),
        pytest.param("29.02.2024 12:00:00", utc(2024, 2, 29, 12, 0, 0), id="leap day"),
    ],
)
def test_every_day_month_year_variant_is_accepted(raw: str, expected: datetime) -> None:
    # Given a day-month-year timestamp in one of the accepted spellings, of a company on UTC
    # When I parse it
    parsed = parse_local_timestamp(raw, ZULU)

    # Then I expect the instant it spells
    assert parsed == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("2025-04-30T11:38:14", utc(2025, 4, 30, 9, 38, 14), id="naive: in the company zone"),
        pytest.param("2025-04-30 11:38:14", utc(2025, 4, 30, 9, 38, 14), id="space instead of T"),
        pytest.param("2025-04-30T11:38", utc(2025, 4, 30, 9, 38, 0), id="no seconds"),
        pytest.param("2025-04-30T11:38:14Z", utc(2025, 4, 30, 11, 38, 14), id="Z is UTC"),
        pytest.param("2025-04-30T11:38:14+00:00", utc(2025, 4, 30, 11, 38, 14), id="zero offset"),
        pytest.param("2025-04-30T11:38:14-04:00", utc(2025, 4, 30, 15, 38, 14), id="negative offset"),
        pytest.param("2025-04-30T11:38:14+0530", utc(2025, 4, 30, 6, 8, 14), id="offset without colon"),
        pytest.param("2025-04-30T11:38:14+09", utc(2025, 4, 30, 2, 38, 14), id="offset in hours"),
        pytest.param("2025-04-30T11:38:14.25Z", utc(2025, 4, 30, 11, 38, 14, 250000), id="fraction"),
        pytest.param(
            "2025-04-30T11:38:14.123456789Z", utc(2025, 4, 30, 11, 38, 14, 123456), id="nanoseconds truncated"
        ),
    ],
)
def test_iso_8601_is_the_fallback_and_an_offset_is_honoured_as_given(raw: str, expected: datetime) -> None:
    # Given an ISO 8601 timestamp, of a company in Amsterdam (CEST, UTC+2, on that date)
    # When I parse it
    parsed = parse_local_timestamp(raw, AMSTERDAM)

    # Then I expect its own offset used when it has one, and the company zone otherwise
    assert parsed == expected


def test_an_ambiguous_time_in_the_autumn_is_its_first_occurrence() -> None:
    # Given 02:30 on the night Amsterdam goes back from CEST to CET: it happens twice, at 00:30 and 01:30 UTC
    raw = "26.10.2025 02:30:00"

    # When I parse it
    parsed = parse_local_timestamp(raw, AMSTERDAM)

    # Then I expect the first occurrence, still in summer time
    assert parsed == utc(2025, 10, 26, 0, 30, 0)
    assert parsed.astimezone(AMSTERDAM).tzname() == "CEST"


def test_an_ambiguous_time_in_new_york_is_its_first_occurrence_too() -> None:
    # Given 01:30 on the night New York goes back from EDT to EST
    raw = "02.11.2025 01:30"

    # When I parse it
    parsed = parse_local_timestamp(raw, NEW_YORK)

    # Then I expect the first occurrence, in EDT (UTC-4)
    assert parsed == utc(2025, 11, 2, 5, 30, 0)


def test_a_time_in_the_spring_gap_is_shifted_forward_by_the_gap() -> None:
    # Given 02:30 on the night Amsterdam skips from 02:00 CET to 03:00 CEST: that wall-clock time never is
    raw = "30.03.2025 02:30:00"

    # When I parse it
    parsed = parse_local_timestamp(raw, AMSTERDAM)

    # Then I expect it moved forward by the hour skipped: 03:30 CEST, which is 01:30 UTC
    assert parsed == utc(2025, 3, 30, 1, 30, 0)
    assert parsed.astimezone(AMSTERDAM).strftime("%H:%M %Z") == "03:30 CEST"


def test_a_time_in_the_new_york_spring_gap_is_shifted_forward_too() -> None:
    # Given 02:15 on the night New York skips from 02:00 EST to 03:00 EDT
    raw = "09.03.2025 02:15"

    # When I parse it
    parsed = parse_local_timestamp(raw, NEW_YORK)

    # Then I expect 03:15 EDT
    assert parsed.astimezone(NEW_YORK).strftime("%H:%M %Z") == "03:15 EDT"
    assert parsed == utc(2025, 3, 9, 7, 15, 0)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param("32.04.2025 10:00:00", "day 32 out of range", id="day 32"),
        pytest.param("31.04.2025 10:00:00", "day 31 out of range for 2025-04", id="April has 30 days"),
        pytest.param("29.02.2025 10:00:00", "day 29 out of range for 2025-02", id="no leap day in 2025"),
        pytest.param("0.04.2025 10:00:00", "day 0 out of range", id="day 0"),
        pytest.param("30.13.2025 10:00:00", "month 13 out of range", id="month 13"),
        pytest.param("30.00.2025 10:00:00", "month 0 out of range", id="month 0"),
        pytest.param("30.04.0000 10:00:00", "year 0 out of range", id="year 0"),
        pytest.param("30.04.2025 24:00:00", "hour 24 out of range", id="hour 24"),
        pytest.param("30.04.2025 10:60:00", "minute 60 out of range", id="minute 60"),
        pytest.param("30.04.2025 10:00:60", "second 60 out of range", id="leap second"),
        pytest.param("2025-02-30T10:00:00", "day 30 out of range for 2025-02", id="ISO day out of range"),
        pytest.param(
            "2025-04-30T10:00:00+24:00", "UTC offset +24:00 out of range", id="ISO offset too large"
        ),
        pytest.param("01.01.0001 00:00:00", "out of the supported date range", id="before year 1 in UTC"),
        pytest.param("", "empty value", id="empty"),
        pytest.param("   ", "empty value", id="whitespace only"),
        pytest.param("yesterday", "unrecognised format", id="words"),
        pytest.param("30.04.2025", "unrecognised format", id="date without time"),
        pytest.param("2025-04-30", "unrecognised format", id="ISO date without time"),
        pytest.param("30.04.25 10:00:00", "unrecognised format", id="two-digit year"),
        pytest.param("30.04-2025 10:00:00", "unrecognised format", id="mixed date separators"),
        pytest.param("30.04.2025 10:00:00.5", "unrecognised format", id="fraction in the day-month format"),
        pytest.param("30.04.2025T10:00:00", "unrecognised format", id="T in the day-month format"),
        pytest.param(
            "30.04.2025 10:00:00 +02:00", "unrecognised format", id="offset in the day-month format"
        ),
        pytest.param("\u0663\u0660.04.2025 10:00:00", "unrecognised format", id="non-ASCII digits"),
        pytest.param("1746005894", "unrecognised format", id="epoch seconds"),
    ],
)
def test_a_bad_timestamp_raises_an_error_naming_the_value_and_the_reason(raw: str, reason: str) -> None:
    # Given a value that is not a valid timestamp
    # When I parse it
    with pytest.raises(TimestampError) as caught:
        parse_local_timestamp(raw, AMSTERDAM)

    # Then I expect a ValueError whose message holds the value verbatim and says why
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.raw == raw
    assert reason in error.reason
    assert raw in str(error)
    assert reason in str(error)


def test_the_error_survives_pickling() -> None:
    # Given a timestamp error, as a worker process would send it to another
    error = TimestampError("32.04.2025 10:00", "day 32 out of range for 2025-04")

    # When I pickle and unpickle it
    copy = pickle.loads(pickle.dumps(error))

    # Then I expect the same value, reason and message
    assert (copy.raw, copy.reason, str(copy)) == (error.raw, error.reason, str(error))
