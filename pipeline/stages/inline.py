"""Running one scheduler's tick in this process (``livedash schedulers trigger --inline``).

The tick's entry point runs as its actor would, and the work it sends to its own actors runs here too, by
the same entry points; what it hands to the next stage is published as on a worker. Sweeps take every
waiting item, since no message of this run can still be on its way.
"""

from __future__ import annotations

from sqlalchemy import Engine

from pipeline.publishing import Publisher
from pipeline.scheduling.jobs import find_job
from pipeline.settings import Settings
from pipeline.stages.runtime import BrokerDispatch, InlineDispatch, StageRuntime

__all__ = ["run_inline"]


def run_inline(settings: Settings, scheduler_id: str, *, engine: Engine | None = None) -> list[str]:
    """Run ``scheduler_id``'s tick and its work here; one line per call, the tick's first. Raises
    :class:`~pipeline.scheduling.jobs.UnknownScheduler`."""
    job = find_job(settings, scheduler_id).definition
    publisher = Publisher(settings)

    dispatch = InlineDispatch(job.work, BrokerDispatch(publisher))
    runtime = StageRuntime(settings, dispatch=dispatch, engine=engine, sweep_everything=True)
    try:
        tick = job.tick.entry()(runtime)
    finally:
        runtime.close()
        publisher.close()
    return [str(tick), *dispatch.reports]
