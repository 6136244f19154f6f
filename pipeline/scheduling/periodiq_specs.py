"""The ``periodic`` option of a tick actor: our cron, in a form periodiq's own loop fires correctly.

periodiq 0.14.0 parses a cron string into a ``CronSpec`` that never fires Sunday day-of-week specs (it
compares ISO weekdays, Sunday = 7, against a set in which Sunday is 0) and reads it in the host's time zone.
Its scheduler only asks a spec two questions, ``validate(moment)`` and ``next_valid_date(moment)``, so the
option is a :class:`PeriodiqSchedule` that answers both from :class:`~pipeline.scheduling.cron.CronSchedule`
(cronsim, in ``SCHEDULER_TIMEZONE``): ``periodiq pipeline.actors`` then fires every spec at the same instants
as ``livedash scheduler``, and each tick it sends claims its own ledger entry (``scheduling.ticks``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pipeline.scheduling.cron import CronSchedule
from pipeline.scheduling.jobs import JobDefinition
from pipeline.settings import Settings

__all__ = ["PeriodiqSchedule", "periodic_options"]

_MINUTE = timedelta(minutes=1)


class PeriodiqSchedule:
    """A cron expression read in a time zone, answering periodiq's scheduler the way cronsim fires it."""

    def __init__(self, expression: str, timezone: str) -> None:
        self.schedule = CronSchedule(expression, timezone)
        self.timezone = timezone

    def validate(self, moment: datetime) -> bool:
        """Whether the cron fires in ``moment``'s minute (periodiq's loop wakes at most a second late)."""
        minute = moment.replace(second=0, microsecond=0)
        return self.schedule.next_after(minute - _MINUTE) == minute

    def next_valid_date(self, moment: datetime) -> datetime:
        """The first fire time after ``moment``'s minute, in ``moment``'s zone."""
        return self.schedule.next_after(moment.replace(second=0, microsecond=0)).astimezone(moment.tzinfo)

    def __str__(self) -> str:
        return f"{self.schedule.expression} ({self.timezone})"

    def __repr__(self) -> str:
        return f"<PeriodiqSchedule {self}>"


def periodic_options(settings: Settings, job: JobDefinition) -> dict[str, Any]:
    """The tick actor's ``periodic`` option; absent when this deployment runs no cron ticks, because
    periodiq-aware tools schedule every actor that has the option at all."""
    if not settings.scheduler_enabled:
        return {}
    return {"periodic": PeriodiqSchedule(job.cron(settings), settings.scheduler_timezone)}
