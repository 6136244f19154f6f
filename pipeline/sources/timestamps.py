"""The naive local timestamps of the company CSV and transcripts, parsed to aware UTC datetimes.

The format (``docs/csv-import.md``): ``DD.MM.YYYY HH:mm:ss``, for example ``30.04.2025 11:38:14``, with no
time zone. The wall-clock time is read in the company's source time zone, given by the caller (never the
server's), and returned in UTC.

:func:`parse_local_timestamp` accepts:

* ``D.M.YYYY H:m:s``: one- or two-digit day, month, hour, minute and second; ``.``, ``-`` or ``/`` between
  the date parts (the same one twice); the seconds optional (``HH:mm``); spaces or tabs between date and time.
* As a fallback, ISO 8601 in its extended form, ``YYYY-MM-DDTHH:mm[:ss[.f]]`` (``T`` or a space), with an
  optional ``Z`` or ``±HH[:MM]`` offset, which is honoured as given; without one the time is in the zone.

Choices the format leaves open, made here:

* Surrounding whitespace is ignored; digits are ASCII only; a date without a time of day is refused.
* Day-month order is fixed (``DD.MM``), even with ``/``: the data is European, and guessing per value would
  let ``01/05`` mean two different days in one file.
* ISO fractions of a second are kept to the microsecond; further digits are truncated.
* Daylight saving time, when the wall-clock time is not one instant in the zone:

  - an ambiguous time (the repeated hour when clocks go back) is its **first** occurrence, still in summer
    time: 02:30 on 26.10.2025 in Europe/Amsterdam is 02:30 CEST, 00:30 UTC;
  - a non-existent time (the skipped hour when clocks go forward) is **shifted forward by the gap**: 02:30 on
    30.03.2025 in Europe/Amsterdam is read with the offset before the change, +01:00, so it is 01:30 UTC,
    shown in the zone as 03:30 CEST.

  Both are what :pep:`495` gives for ``fold=0``; neither is an error, as a logged chat did happen at a time.
* Anything else raises :class:`TimestampError`, which names the value and the reason.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from pipeline.errors import PermanentError

__all__ = ["TimestampError", "parse_local_timestamp"]


class TimestampError(PermanentError, ValueError):
    """Raised when a timestamp cannot be parsed.

    Parameters:
      raw(str): The value as given, untrimmed.
      reason(str): Why it was refused, for a human: ``"day 32 out of range for 2025-04"``.
    """

    def __init__(self, raw: str, reason: str) -> None:
        self.raw = raw
        self.reason = reason
        # Both in args, so that the error survives pickling (to another process) whole.
        super().__init__(raw, reason)

    def __str__(self) -> str:
        return f"invalid timestamp {self.raw!r}: {self.reason}"


def parse_local_timestamp(raw: str, zone: ZoneInfo) -> datetime:
    """Parse ``raw`` as a wall-clock time in ``zone`` (or ISO 8601 with its own offset); return it in UTC.

    Raises:
      TimestampError: the value matches neither format, or a part of it is out of range.
    """
    text = raw.strip()
    if not text:
        raise TimestampError(raw, "empty value")
    if match := _DAY_MONTH_YEAR.fullmatch(text):
        day, _, month, year, hour, minute, second = match.groups()
        return _to_utc(raw, zone, int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    if match := _ISO_8601.fullmatch(text):
        year, month, day, hour, minute, second, fraction, utc, sign, offset_hours, offset_minutes = (
            match.groups()
        )
        # ljust/truncate: ".5" is 500000 microseconds, ".123456789" is 123456.
        microsecond = int((fraction or "0")[:6].ljust(6, "0"))
        zone_of_value: tzinfo = zone
        if utc:
            zone_of_value = UTC
        elif sign:
            zone_of_value = _fixed_offset(raw, sign, int(offset_hours), int(offset_minutes or 0))
        return _to_utc(
            raw,
            zone_of_value,
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            microsecond,
        )
    raise TimestampError(raw, "unrecognised format (expected DD.MM.YYYY HH:mm[:ss] or ISO 8601)")


# Bounded repetitions and no nested quantifiers: matching is linear in the length of the value.
_DAY_MONTH_YEAR = re.compile(
    r"([0-9]{1,2})([./-])([0-9]{1,2})\2([0-9]{4})[ \t]+([0-9]{1,2}):([0-9]{1,2})(?::([0-9]{1,2}))?", re.ASCII
)
_ISO_8601 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?"
    r"(?:([Zz])|([+-])([0-9]{2})(?::?([0-9]{2}))?)?",
    re.ASCII,
)


def _fixed_offset(raw: str, sign: str, hours: int, minutes: int) -> timezone:
    if hours > 23 or minutes > 59:
        raise TimestampError(raw, f"UTC offset {sign}{hours:02d}:{minutes:02d} out of range")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if sign == "-" else offset)


def _to_utc(
    raw: str,
    zone: tzinfo,
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
    microsecond: int = 0,
) -> datetime:
    """Check each part's range (naming the first bad one), then convert the wall-clock time in ``zone``."""
    if year < 1:
        raise TimestampError(raw, f"year {year} out of range")
    if not 1 <= month <= 12:
        raise TimestampError(raw, f"month {month} out of range")
    days_in_month = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days_in_month:
        raise TimestampError(raw, f"day {day} out of range for {year:04d}-{month:02d}")
    for name, value, limit in (("hour", hour, 23), ("minute", minute, 59), ("second", second, 59)):
        if value > limit:
            raise TimestampError(raw, f"{name} {value} out of range")
    # fold=0 (the default) is the documented DST policy: with zoneinfo it picks the first of two ambiguous
    # instants, and reads a time in a gap with the offset before the change, which moves it past the gap.
    local = datetime(year, month, day, hour, minute, second, microsecond, tzinfo=zone)
    try:
        return local.astimezone(UTC)
    except OverflowError:
        # 01.01.0001 00:00 east of UTC, or 31.12.9999 23:59 west of it, falls outside datetime's range in UTC.
        raise TimestampError(raw, "out of the supported date range") from None
