"""Reading every source at once, each under ``HEALTH_SOURCE_TIMEOUT_MS``, and judging every scheduler.

A source that fails or does not answer in time becomes a reason (and a count in
``livedash_health_source_errors_total{source}``), never an exception and never a wait longer than the
timeout: each read runs in a worker thread that is abandoned when its time is up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Generic, TypeVar

import httpx
from sqlalchemy import Engine

from pipeline.db.types import utcnow
from pipeline.health.rules import STAGE_OF_SCHEDULER, EndpointState, Observation, Status, judge
from pipeline.health.sources import HttpSources, MetricsFigures, QueueStats, SourceError
from pipeline.health.targets import SCHEDULER_PROCESS, metrics_targets, strip_userinfo
from pipeline.metrics import DEAD_LETTERS, HEALTH_SOURCE_ERRORS, SCHEDULER_HEALTHY
from pipeline.redaction import redact
from pipeline.scheduling.jobs import Job, scheduled_jobs
from pipeline.scheduling.overview import SchedulerOverview, scheduler_overviews
from pipeline.settings import Settings

__all__ = [
    "HealthAggregator",
    "HealthReport",
    "MetricsRead",
    "QueueView",
    "SchedulerHealth",
    "build_aggregator",
    "describe_error",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Threads that run source reads; reads abandoned at their timeout keep one until their own timeout ends.
READ_THREADS = 16


@dataclass(frozen=True)
class MetricsRead:
    """One read of metrics: a target URL (``source="metrics"``), or Prometheus (``source="prometheus"``).

    ``ids`` are the target ids configured with this URL; a Prometheus read has none (its answer says which
    scrape jobs are up).
    """

    source: str
    name: str
    read: Callable[[], MetricsFigures]
    ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueView:
    """A stage queue with its delay queue (``.DQ``) and dead-letter queue (``.XQ``)."""

    name: str
    ready: int
    unacked: int
    consumers: int
    delayed: int
    dead_letters: int
    declared: bool


@dataclass(frozen=True)
class SchedulerHealth:
    job: Job
    status: Status
    reasons: tuple[str, ...]
    overview: SchedulerOverview | None
    last_success: datetime | None
    queue: QueueView | None
    lag_seconds: float | None
    metrics_endpoint: EndpointState | None

    @property
    def healthy(self) -> bool:
        return self.status is not Status.ERROR


@dataclass(frozen=True)
class HealthReport:
    timestamp: datetime
    schedulers: tuple[SchedulerHealth, ...]
    #: Source name (database, rabbitmq, metrics, prometheus) → why it could not be read; absent: read fine.
    source_errors: Mapping[str, str] = field(default_factory=dict)
    #: Metrics targets that are not a scheduler (the scheduler process) and what their endpoints did.
    components: Mapping[str, EndpointState] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """Healthy when no scheduler is in ERROR (paused or stopped by an operator is not unhealthy)."""
        return self.errors == 0

    @property
    def running(self) -> int:
        return sum(1 for scheduler in self.schedulers if scheduler.status is Status.RUNNING)

    @property
    def errors(self) -> int:
        return sum(1 for scheduler in self.schedulers if scheduler.status is Status.ERROR)


@dataclass(frozen=True)
class _Outcome(Generic[T]):
    value: T | None
    error: str | None


def describe_error(exc: BaseException) -> str:
    """One line for a reason: a source's own message as it is, any other exception with its type
    (``ConnectError: ...``); SQLAlchemy's SQL and background lines are left out, credentials masked."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    if isinstance(exc, SourceError) or type(exc).__name__ in text:
        return redact(text)
    return redact(f"{type(exc).__name__}: {text}")


class HealthAggregator:
    """Judges every scheduler from injectable sources.

    ``overviews`` reads the run history (given the evaluation time); ``queues`` reads RabbitMQ (given the
    queue names, returning those that exist); ``metrics`` are the metrics reads. ``prometheus_mode`` says
    whether the metrics reads are a Prometheus query (endpoint states come from its ``up`` series, by scrape
    job = queue name) or scrapes of ``targets``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        overviews: Callable[[datetime], list[SchedulerOverview]],
        queues: Callable[[Sequence[str]], Mapping[str, QueueStats]] | None,
        metrics: Sequence[MetricsRead] = (),
        targets: Mapping[str, tuple[str, ...]] | None = None,
        prometheus_mode: bool = False,
        clock: Callable[[], datetime] = utcnow,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.jobs = scheduled_jobs(settings)
        self.overviews = overviews
        self.queues = queues
        self.metrics = list(metrics)
        self.targets = dict(targets or {})
        self.prometheus_mode = prometheus_mode
        self.clock = clock
        self.timeout = settings.health_source_timeout_ms / 1000
        self.queue_names = list(dict.fromkeys(job.queue for job in self.jobs))
        self._executor = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="health-source")
        self._on_close = on_close

    def close(self) -> None:
        """Abandon reads still running and release the sources."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._on_close is not None:
            self._on_close()

    async def read(self, source: str, name: str, function: Callable[[], T]) -> _Outcome[T]:
        """``function()`` in a thread, at most ``HEALTH_SOURCE_TIMEOUT_MS``; a failure is counted and
        described, prefixed with ``name``."""
        loop = asyncio.get_running_loop()
        try:
            value = await asyncio.wait_for(loop.run_in_executor(self._executor, function), self.timeout)
        except (TimeoutError, httpx.TimeoutException):
            # The HTTP client's own timeout is longer, but when this event loop runs late (a loaded process)
            # it can end the read before the deadline above is seen: a source that hangs has one wording.
            error = f"{name}: no answer within {self.settings.health_source_timeout_ms} ms"
        except Exception as exc:
            error = f"{name}: {describe_error(exc)}"
        else:
            return _Outcome(value, None)
        HEALTH_SOURCE_ERRORS.labels(source).inc()
        logger.warning("health source %s unreadable: %s", source, error)
        return _Outcome(None, error)

    async def evaluate(self) -> HealthReport:
        """Read every source concurrently, judge every scheduler, and set the health gauges."""
        now = self.clock()
        reads = asyncio.gather(
            self.read("database", "database", lambda: self.overviews(now)),
            self.read("rabbitmq", "RabbitMQ", self._read_queues),
            asyncio.gather(*(self.read(item.source, item.name, item.read) for item in self.metrics)),
        )
        overviews, queues, metrics = await reads
        return self._judge_all(now, overviews, queues if self.queues is not None else None, list(metrics))

    def _read_queues(self) -> Mapping[str, QueueStats]:
        if self.queues is None:
            return {}
        names = [f"{queue}{suffix}" for queue in self.queue_names for suffix in ("", ".DQ", ".XQ")]
        return self.queues(names)

    def _prometheus_endpoints(
        self, metrics: list[_Outcome[MetricsFigures]]
    ) -> tuple[dict[str, EndpointState], str | None]:
        failures = [outcome.error for outcome in metrics if outcome.error]
        if failures:
            return {}, "; ".join(failures)
        jobs: dict[str, tuple[int, int]] = {}
        for outcome in metrics:
            if outcome.value is not None:
                jobs.update(outcome.value.targets)
        states = {}
        scrape_jobs = [(job.id, job.queue) for job in self.jobs] + [(SCHEDULER_PROCESS, SCHEDULER_PROCESS)]
        for target_id, scrape_job in scrape_jobs:
            if scrape_job in jobs:
                answered, total = jobs[scrape_job]
                down = total - answered
                failures_text = (f"Prometheus sees {down} of {total} {scrape_job} target(s) down",)
                states[target_id] = EndpointState(answered, total, failures_text if down else ())
        return states, None

    def _scraped_endpoint(self, target_id: str, metrics: list[_Outcome[MetricsFigures]]) -> EndpointState:
        answered = total = 0
        failures = []
        for item, outcome in zip(self.metrics, metrics, strict=True):
            if target_id in item.ids:
                total += 1
                if outcome.error is None:
                    answered += 1
                else:
                    failures.append(outcome.error)
        return EndpointState(answered, total, tuple(failures))

    def _endpoints(
        self, metrics: list[_Outcome[MetricsFigures]]
    ) -> tuple[dict[str, EndpointState], str | None]:
        """Endpoint state per target id (job id or the scheduler process), and a Prometheus failure."""
        if self.prometheus_mode:
            return self._prometheus_endpoints(metrics)
        states = {target_id: self._scraped_endpoint(target_id, metrics) for target_id in self.targets}
        for job in self.jobs:
            # A scheduler without a target of its own is served by the pool of another on its queue.
            sharing = (
                other.id for other in self.jobs if other.queue == job.queue and other.id in self.targets
            )
            if job.id not in states and (other_id := next(sharing, None)) is not None:
                states[job.id] = states[other_id]
        return states, None

    def _judge_all(
        self,
        now: datetime,
        overviews: _Outcome[list[SchedulerOverview]],
        queues: _Outcome[Mapping[str, QueueStats]] | None,
        metrics: list[_Outcome[MetricsFigures]],
    ) -> HealthReport:
        endpoints, metrics_error = self._endpoints(metrics)
        lag, last_success = _merged_figures(metrics)
        read = _Read(
            overviews={overview.id: overview for overview in overviews.value or []},
            database_error=overviews.error,
            queues=queues.value if queues is not None else None,
            rabbitmq_error=queues.error if queues is not None else None,
            endpoints=endpoints,
            metrics_error=metrics_error,
            lag=lag,
            last_success=last_success,
        )
        if read.queues is not None:
            vhost = self.settings.rabbitmq_vhost
            for queue in self.queue_names:
                DEAD_LETTERS.labels(vhost, queue).set(_total(read.queues.get(f"{queue}.XQ")))
        results = tuple(self._scheduler_health(job, read, now) for job in self.jobs)
        components = {key: value for key, value in endpoints.items() if key == SCHEDULER_PROCESS}
        return HealthReport(now, results, self._source_errors(read, metrics), components)

    def _scheduler_health(self, job: Job, read: _Read, now: datetime) -> SchedulerHealth:
        observation = read.observation(job)
        verdict = judge(observation, self.settings, now)
        SCHEDULER_HEALTHY.labels(job.id).set(1 if verdict.healthy else 0)
        return SchedulerHealth(
            job=job,
            status=verdict.status,
            reasons=verdict.reasons,
            overview=observation.overview,
            last_success=observation.last_success,
            queue=read.queue_view(job),
            lag_seconds=observation.lag_seconds,
            metrics_endpoint=observation.endpoint,
        )

    def _source_errors(self, read: _Read, metrics: list[_Outcome[MetricsFigures]]) -> dict[str, str]:
        named = (
            ("database", read.database_error),
            ("rabbitmq", read.rabbitmq_error),
            ("prometheus" if self.prometheus_mode else "metrics", read.metrics_error),
        )
        source_errors = {name: error for name, error in named if error is not None}
        if not self.prometheus_mode:
            scrape_failures = [outcome.error for outcome in metrics if outcome.error]
            if scrape_failures:
                source_errors["metrics"] = "; ".join(scrape_failures)
        return source_errors


def _total(stats: QueueStats | None) -> int:
    return stats.ready + stats.unacked if stats else 0


def _merged_figures(metrics: list[_Outcome[MetricsFigures]]) -> tuple[dict[str, float], dict[str, float]]:
    """The highest lag per stage and the latest success per scheduler over every metrics source."""
    lag: dict[str, float] = {}
    last_success: dict[str, float] = {}
    for outcome in metrics:
        if outcome.value is not None:
            for stage, value in outcome.value.lag_seconds.items():
                lag[stage] = max(lag.get(stage, value), value)
            for scheduler, value in outcome.value.last_success.items():
                last_success[scheduler] = max(last_success.get(scheduler, value), value)
    return lag, last_success


@dataclass(frozen=True)
class _Read:
    """What one evaluation read from every source; ``None`` values and errors say what it could not."""

    overviews: dict[str, SchedulerOverview]
    database_error: str | None
    queues: Mapping[str, QueueStats] | None
    rabbitmq_error: str | None
    endpoints: dict[str, EndpointState]
    metrics_error: str | None
    lag: dict[str, float]
    last_success: dict[str, float]

    def observation(self, job: Job) -> Observation:
        found = self.queues
        lag_stage = STAGE_OF_SCHEDULER.get(job.id)
        success_stamp = self.last_success.get(job.id)
        return Observation(
            job=job,
            overview=self.overviews.get(job.id),
            database_error=self.database_error
            or (None if job.id in self.overviews else "no overview returned"),
            queue=found.get(job.queue, QueueStats(0, 0, 0)) if found is not None else None,
            delayed=found.get(f"{job.queue}.DQ") if found is not None else None,
            queue_declared=found is None or job.queue in found,
            rabbitmq_error=self.rabbitmq_error,
            endpoint=self.endpoints.get(job.id),
            metrics_error=self.metrics_error,
            lag_seconds=self.lag.get(lag_stage) if lag_stage else None,
            metrics_last_success=(
                datetime.fromtimestamp(success_stamp, UTC) if success_stamp is not None else None
            ),
            scheduler_process=self.endpoints.get(SCHEDULER_PROCESS),
        )

    def queue_view(self, job: Job) -> QueueView | None:
        if self.queues is None:
            return None
        stats = self.queues.get(job.queue, QueueStats(0, 0, 0))
        return QueueView(
            name=job.queue,
            ready=stats.ready,
            unacked=stats.unacked,
            consumers=stats.consumers,
            delayed=_total(self.queues.get(f"{job.queue}.DQ")),
            dead_letters=_total(self.queues.get(f"{job.queue}.XQ")),
            declared=job.queue in self.queues,
        )


def build_aggregator(settings: Settings, engine: Engine) -> HealthAggregator:
    """The aggregator over the real sources of ``settings`` (raises ``TargetsError`` for bad targets)."""
    targets = metrics_targets(settings)
    http = HttpSources(settings)
    metrics: list[MetricsRead] = []
    if http.prometheus_url is not None:
        metrics.append(MetricsRead("prometheus", "Prometheus", http.prometheus))
    else:
        urls: dict[str, list[str]] = {}
        for target_id, target_urls in targets.items():
            for url in target_urls:
                urls.setdefault(url, []).append(target_id)
        for url, ids in urls.items():
            metrics.append(MetricsRead("metrics", strip_userinfo(url), partial(http.scrape, url), tuple(ids)))
    return HealthAggregator(
        settings,
        overviews=lambda now: scheduler_overviews(engine, settings, now),
        queues=http.queues,
        metrics=metrics,
        targets=targets,
        prometheus_mode=http.prometheus_url is not None,
        on_close=http.close,
    )
