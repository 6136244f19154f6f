"""The scheduler process: evaluate every job's cron, record and send each tick once, sleep until the next.

periodiq declares which actors are cron ticks (their ``periodic`` option), but its own loop cannot run as
several replicas (each would send every tick), forgets ticks missed while it was down, skips Sunday
day-of-week specs, has no overlap control, and exits for good when a tick meets a dead broker. This loop keeps
the declarations and replaces the loop: each pass asks the tick ledger to record the newest due tick of every
job, a failed pass is retried with backoff (nothing was recorded, so nothing is lost), and SIGTERM ends it
between passes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from pipeline.db.models import SchedulerTick
from pipeline.db.types import utcnow
from pipeline.metrics import SCHEDULER_LOOP_ERRORS, SCHEDULER_TICKS
from pipeline.retention import prune_retained
from pipeline.scheduling.history import prune_history
from pipeline.scheduling.jobs import Job, scheduled_jobs
from pipeline.scheduling.ticks import Publish, TickDecision, record_tick
from pipeline.settings import Settings

if TYPE_CHECKING:
    import openai

__all__ = ["LATENESS", "SchedulerLoop"]

logger = logging.getLogger(__name__)

#: A tick this late is still on time (the loop wakes a little after the fire time, a pass may be slow);
#: anything older is catch-up, bounded by ``SCHEDULER_CATCHUP_WINDOW``.
LATENESS = timedelta(seconds=90)
#: Longest sleep between passes, so a clock jump or a changed schedule is noticed within it.
MAX_SLEEP_SECONDS = 60.0
#: How often a scheduler prunes old ticks and runs.
PRUNE_EVERY = timedelta(hours=1)
#: Backoff after a failed pass (broker or database down): doubles up to the maximum.
MIN_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0


class SchedulerLoop:
    """One scheduler replica. ``clock`` is injectable so tests drive time instead of waiting for it."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        publish: Publish,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.publish = publish
        self.clock = clock
        self.jobs = scheduled_jobs(settings)
        self.catchup = max(timedelta(seconds=settings.scheduler_catchup_window), LATENESS)
        self.overlap_timeout = timedelta(seconds=settings.scheduler_overlap_timeout)
        self.history = timedelta(days=settings.scheduler_history_days)
        self.pruned_at: datetime | None = None

    def _last_tick(self, job: Job) -> datetime | None:
        with Session(self.engine) as db:
            return db.scalar(select(func.max(SchedulerTick.tick_at)).where(SchedulerTick.job == job.id))

    def run_pass(self, now: datetime) -> list[TickDecision]:
        """Record and send the newest due tick of every job; earlier missed ones collapse into it."""
        decisions = []
        for job in self.jobs:
            window_start = now - self.catchup
            last = self._last_tick(job)
            fires = job.schedule(self.settings.scheduler_timezone).fires_between(
                max(last, window_start) if last else window_start, now
            )
            if not fires:
                continue
            detail = None
            if len(fires) > 1 or now - fires[-1] > LATENESS:
                detail = f"catch-up: {len(fires)} due since {fires[0].isoformat()}, the newest runs once"
            try:
                decision = record_tick(
                    self.engine,
                    job,
                    fires[-1],
                    publish=self.publish,
                    instance_id=self.settings.scheduler_instance_id,
                    overlap_timeout=self.overlap_timeout,
                    detail=detail,
                )
            except Exception:
                # Nothing was recorded: the tick stays due and the next pass sends it.
                SCHEDULER_TICKS.labels(job.id, "failed").inc()
                raise
            logger.info(
                "tick %s at %s: %s%s",
                job.id,
                fires[-1].isoformat(),
                decision.result.value,
                f" ({decision.detail})" if decision.detail else "",
            )
            decisions.append(decision)
        return decisions

    def prune_if_due(self, now: datetime) -> None:
        """Delete ticks and runs past ``SCHEDULER_HISTORY_DAYS`` and what the retention settings let go
        (``pipeline.retention``), at most once per ``PRUNE_EVERY``."""
        if self.pruned_at is not None and now - self.pruned_at < PRUNE_EVERY:
            return
        pruned = prune_history(self.engine, now, self.history)
        if pruned.runs or pruned.ticks:
            logger.info("pruned %d runs and %d ticks older than %s", pruned.runs, pruned.ticks, self.history)
        prune_retained(self.engine, self.settings, now, self._openai)
        self.pruned_at = now

    def _openai(self) -> openai.OpenAI:
        # Imported when a batch's files are due, not with this module: importing the actors loads no SDK.
        from pipeline.analysis.openai_calls import openai_client

        return openai_client(self.settings)

    def seconds_until_next(self, now: datetime) -> float:
        """Seconds from ``now`` to the earliest next fire time of any job, capped at ``MAX_SLEEP_SECONDS``."""
        zone = self.settings.scheduler_timezone
        upcoming = min(job.schedule(zone).next_after(now) for job in self.jobs)
        return min(max((upcoming - now).total_seconds(), 0.0), MAX_SLEEP_SECONDS)

    def run_forever(self, stop: threading.Event) -> None:
        """Run passes until ``stop`` is set; a failed pass is logged, counted and retried."""
        retry = MIN_RETRY_SECONDS
        while not stop.is_set():
            try:
                self.run_pass(self.clock())
                self.prune_if_due(self.clock())
            except Exception:
                SCHEDULER_LOOP_ERRORS.inc()
                logger.exception("scheduler pass failed; retrying in %.0f s", retry)
                stop.wait(retry)
                retry = min(retry * 2, MAX_RETRY_SECONDS)
                continue
            retry = MIN_RETRY_SECONDS
            # Wake just after the fire time, so the tick is due when the pass looks at it.
            stop.wait(self.seconds_until_next(self.clock()) + 0.05)
