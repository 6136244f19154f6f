"""When a cron expression fires.

periodiq 0.14.0 never fires Sunday day-of-week specs (it compares ISO weekdays, Sunday = 7, against a set in
which Sunday is 0), so the scheduler computes ticks with cronsim, which follows cronie: ``0`` and ``7`` and
``sun`` are Sunday, and across DST changes a fixed-time job fires once while an every-N-minutes job follows
the wall clock. Expressions are read in a time zone; ticks are returned in UTC, which is how they are keyed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

__all__ = ["CronError", "CronSchedule", "normalize_cron"]

#: The macros periodiq and Vixie cron accept, which cronsim does not.
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class CronError(ValueError):
    """A cron expression that cannot be evaluated; the message names the expression and the reason."""


def normalize_cron(expression: str) -> str:
    """``expression`` with collapsed whitespace and macros expanded; raises :class:`CronError` if invalid."""
    collapsed = " ".join(expression.split())
    expanded = MACROS.get(collapsed.lower(), collapsed)
    try:
        CronSim(expanded, datetime.now(UTC))
    except CronSimError as exc:
        raise CronError(f"invalid cron expression {expression!r}: {exc}") from exc
    return expanded


class CronSchedule:
    """The fire times of one cron expression read in one time zone."""

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        self.expression = normalize_cron(expression)
        self.zone = ZoneInfo(timezone)

    def _after(self, moment: datetime) -> Iterator[datetime]:
        for fire in CronSim(self.expression, moment.astimezone(self.zone)):
            yield fire.astimezone(UTC)

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after ``moment``, in UTC."""
        return next(self._after(moment))

    def fires_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Fire times in ``(start, end]``, in UTC and in order."""
        fires = []
        for fire in self._after(start):
            if fire > end:
                break
            fires.append(fire)
        return fires

    def last_at_or_before(self, moment: datetime, *, not_before: datetime) -> datetime | None:
        """The newest fire time in ``(not_before, moment]``, or None."""
        fires = self.fires_between(not_before, moment)
        return fires[-1] if fires else None
