"""Running one scheduler's tick in this process (``livedash schedulers trigger --inline``).

The tick's entry point runs as its actor would, and the work it sends to its own actors runs here too, by
the same entry points; what it hands to the next stage is published as on a worker. Sweeps take every
waiting item, not only those whose message is overdue: the nudges of an earlier inline run went to a broker
no worker may be reading.
"""

from __future__ import annotations

from collections.abc import Callable

from dramatiq import Message
from sqlalchemy import Engine

from pipeline.publishing import Publisher
from pipeline.scheduling.jobs import find_job
from pipeline.settings import Settings
from pipeline.stages.runtime import BrokerDispatch, InlineDispatch, StageRuntime

__all__ = ["run_inline"]


def run_inline(
    settings: Settings,
    scheduler_id: str,
    *,
    engine: Engine | None = None,
    publish: Callable[[Message[None]], Message[None]] | None = None,
) -> list[str]:
    """Run ``scheduler_id``'s tick and its work here; one line per call, the tick's first. What goes to
    another stage is sent with ``publish`` (default: a broker built from ``settings``). Raises
    :class:`~pipeline.scheduling.jobs.UnknownScheduler`."""
    job = find_job(settings, scheduler_id).definition
    publisher = Publisher(settings)
    dispatch = InlineDispatch(job.work, BrokerDispatch(publish or publisher))
    runtime = StageRuntime(settings, dispatch=dispatch, engine=engine, sweep_everything=True)
    try:
        tick = job.tick.entry()(runtime)
    finally:
        runtime.close()
        publisher.close()
    return [str(tick), *dispatch.reports]
