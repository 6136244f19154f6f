"""Keyset pagination of the operator lists: ``--before`` the time of the last entry of the previous page.

A page is read by walking an index from that time backwards, so the hundredth page costs what the first does
(an ``OFFSET`` would read and throw away every entry before it).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.cli.errors import exit_with_usage_error

__all__ = ["BEFORE_HELP", "parse_before"]

BEFORE_HELP = (
    "Only entries older than this ISO 8601 time (UTC unless it says otherwise); pass the time of the last "
    "entry of a page to get the next one."
)


def parse_before(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        exit_with_usage_error(f"--before {value!r} is not an ISO 8601 time")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
