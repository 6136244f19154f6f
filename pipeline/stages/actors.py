"""Declaring the pipeline's Dramatiq actors on a broker, from the job registry.

Every actor calls its stage's entry point with a :class:`~pipeline.stages.runtime.StageRuntime` (asked for at
each message, so nothing is made before the first one) and the message's arguments. A tick actor records
its run, and claims its tick itself when its message arrived without a ledger entry. ``pipeline.actors``
declares them on the global broker for ``dramatiq`` and ``periodiq``; the demo declares them on its own
in-memory broker, with its own runtime.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from pipeline import errors
from pipeline.logs import log_context
from pipeline.scheduling.jobs import JOBS, ActorDefinition, JobDefinition, find_job
from pipeline.scheduling.loop import LATENESS
from pipeline.scheduling.periodiq_specs import periodic_options
from pipeline.scheduling.runs import recorded_run
from pipeline.scheduling.ticks import TickResult, claim_tick
from pipeline.settings import Settings
from pipeline.stages.runtime import StageRuntime

__all__ = ["declare_actors", "should_retry"]

logger = logging.getLogger(__name__)

RuntimeProvider = Callable[[], StageRuntime]


def should_retry(settings: Settings, retries: int, exception: BaseException) -> bool:
    """Every work actor's retry decision, read from the error tree (:mod:`pipeline.errors`): never a
    permanent error, a transient one up to its own budget (a full import pool is waited out longer), anything
    else up to ``ACTOR_MAX_RETRIES``."""
    return errors.should_retry(retries, exception, max_retries=settings.actor_max_retries)


def _sent_at(message: dramatiq.Message[Any] | None) -> datetime:
    """When the tick message was sent: periodiq's ``scheduled_at`` (its fire time), else the message's own
    timestamp."""
    if message is None:
        return datetime.now(UTC)
    scheduled = message.options.get("scheduled_at")
    if scheduled:
        return datetime.fromisoformat(str(scheduled))
    return datetime.fromtimestamp(message.message_timestamp / 1000, UTC)


def _claim_own_tick(runtime: StageRuntime, job: JobDefinition) -> uuid.UUID | None:
    settings = runtime.settings
    message = CurrentMessage.get_current_message()
    decision = claim_tick(
        runtime.engine,
        find_job(settings, job.id),
        _sent_at(message),
        message_id=message.message_id if message else str(uuid.uuid4()),
        timezone=settings.scheduler_timezone,
        window=max(timedelta(seconds=settings.scheduler_catchup_window), LATENESS),
        instance_id=settings.scheduler_instance_id,
        overlap_timeout=timedelta(seconds=settings.scheduler_overlap_timeout),
    )
    if decision.result is not TickResult.ENQUEUED:
        logger.info("tick %s at %s: %s, not run here", job.id, decision.tick_at.isoformat(), decision.result)
    return decision.tick_id if decision.result is TickResult.ENQUEUED else None


def _tick_function(job: JobDefinition, runtime: RuntimeProvider) -> Callable[..., None]:
    def tick(tick_id: str | None = None) -> None:
        current = runtime()
        with (
            log_context(scheduler=job.id),
            recorded_run(
                current.engine,
                job.id,
                tick_id,
                current.settings.scheduler_instance_id,
                claim=lambda: _claim_own_tick(current, job),
            ) as record,
        ):
            if record is not None:
                report = job.tick.entry()(current)
                record.items = report.items
                logger.info("%s", report)

    return tick


def _work_function(actor: ActorDefinition, runtime: RuntimeProvider) -> Callable[..., None]:
    def work(*args: Any) -> None:
        logger.info("%s", actor.entry()(runtime(), *args))

    return work


def _options(settings: Settings, actor: ActorDefinition) -> dict[str, Any]:
    options: dict[str, Any] = {"time_limit": actor.time_limit_ms(settings)}
    if actor.max_retries is not None:
        options["max_retries"] = actor.max_retries
    else:
        options["retry_when"] = partial(should_retry, settings)
    return options


def declare_actors(
    broker: dramatiq.Broker, settings: Settings, runtime: RuntimeProvider
) -> dict[str, dramatiq.Actor[..., None]]:
    """Declare every actor of :data:`~pipeline.scheduling.jobs.JOBS` on ``broker``; returns them by name.

    ``settings`` give the actors' time limits and the ticks' cron; ``runtime`` is asked for at each message.
    """
    actors: dict[str, dramatiq.Actor[..., None]] = {}
    for job in JOBS:
        functions = [(job.tick, _tick_function(job, runtime), periodic_options(settings, job))]
        functions += [(actor, _work_function(actor, runtime), {}) for actor in job.work]
        for definition, function, extra in functions:
            function.__name__ = function.__qualname__ = definition.name
            declare = dramatiq.actor(
                actor_name=definition.name,
                queue_name=definition.queue,
                broker=broker,
                **_options(settings, definition),
                **extra,
            )
            actors[definition.name] = declare(function)
    return actors
