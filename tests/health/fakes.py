"""Fake sources for the health aggregator: change a field, evaluate again."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pipeline.health.aggregator import HealthAggregator, MetricsRead
from pipeline.health.sources import QueueStats
from pipeline.scheduling.jobs import find_job, scheduled_jobs
from pipeline.scheduling.overview import SchedulerOverview
from pipeline.settings import Settings

__all__ = ["NOW", "FakeSources", "make_overview"]

#: A Monday, noon: every test judges at this moment.
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def make_overview(settings: Settings, scheduler_id: str, **changes: object) -> SchedulerOverview:
    """A scheduler that ran and succeeded a minute ago; ``changes`` override any field."""
    job = find_job(settings, scheduler_id)
    minute_ago = NOW - timedelta(minutes=1)
    overview = SchedulerOverview(
        id=job.id,
        name=job.name,
        queue=job.queue,
        cron=job.cron,
        timezone=settings.scheduler_timezone,
        control="ACTIVE",
        control_changed_at=None,
        running_now=False,
        last_run_at=minute_ago,
        last_run_status="SUCCEEDED",
        last_success_at=minute_ago,
        last_error=None,
        last_error_at=None,
        consecutive_failures=0,
        recent_runs=12,
        recent_successes=12,
        recent_failures=0,
        average_run_seconds=1.5,
        last_tick_at=minute_ago,
        last_tick_outcome="ENQUEUED",
        next_run_at=NOW + timedelta(minutes=1),
    )
    return dataclasses.replace(overview, **changes)  # type: ignore[arg-type]


@dataclass
class FakeSources:
    """Every scheduler healthy: recent success, one consumer per queue, nothing waiting."""

    settings: Settings
    overviews: dict[str, SchedulerOverview] = field(default_factory=dict)
    queues: dict[str, QueueStats] = field(default_factory=dict)
    failures: dict[str, Exception] = field(default_factory=dict)
    queue_reads: int = 0

    def __post_init__(self) -> None:
        for job in scheduled_jobs(self.settings):
            self.overviews[job.id] = make_overview(self.settings, job.id)
            self.queues[job.queue] = QueueStats(ready=0, unacked=0, consumers=1)
            self.queues[f"{job.queue}.DQ"] = QueueStats(ready=0, unacked=0, consumers=1)
            self.queues[f"{job.queue}.XQ"] = QueueStats(ready=0, unacked=0, consumers=0)

    def change(self, scheduler_id: str, **changes: object) -> None:
        self.overviews[scheduler_id] = dataclasses.replace(self.overviews[scheduler_id], **changes)  # type: ignore[arg-type]

    def read_overviews(self, now: datetime) -> list[SchedulerOverview]:
        if "database" in self.failures:
            raise self.failures["database"]
        return list(self.overviews.values())

    def read_queues(self, names: Sequence[str]) -> Mapping[str, QueueStats]:
        self.queue_reads += 1
        if "rabbitmq" in self.failures:
            raise self.failures["rabbitmq"]
        return {name: stats for name, stats in self.queues.items() if name in names}

    def aggregator(
        self,
        *,
        metrics: Sequence[MetricsRead] = (),
        targets: Mapping[str, tuple[str, ...]] | None = None,
        prometheus_mode: bool = False,
        settings: Settings | None = None,
    ) -> HealthAggregator:
        return HealthAggregator(
            settings or self.settings,
            overviews=self.read_overviews,
            queues=self.read_queues,
            metrics=metrics,
            targets=targets,
            prometheus_mode=prometheus_mode,
            clock=lambda: NOW,
        )
