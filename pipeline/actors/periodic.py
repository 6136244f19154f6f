"""What makes an actor a cron tick: periodiq's ``periodic`` option, and a run recorded for each tick.

The ``periodic`` option is present only when this deployment runs cron ticks: periodiq-aware tools schedule
every actor that has the option at all, so with ``SCHEDULER_ENABLED=false`` the tick must not carry it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from periodiq import cron

from pipeline.db.engine import get_engine
from pipeline.logs import log_context
from pipeline.scheduling.cron import normalize_cron
from pipeline.scheduling.runs import recorded_run
from pipeline.settings import get_settings

__all__ = ["periodic", "recorded_tick"]


def periodic(expression: str) -> dict[str, Any]:
    """Actor options for a tick on ``expression``."""
    return {"periodic": cron(normalize_cron(expression))} if get_settings().scheduler_enabled else {}


def recorded_tick(job_id: str) -> Callable[[Callable[[], int]], Callable[..., None]]:
    """Wrap a tick function (which returns how many items it handled) so that each delivery is one run in
    the history, and a tick whose run already finished is not run again."""

    def decorate(tick: Callable[[], int]) -> Callable[..., None]:
        @functools.wraps(tick)
        def run(tick_id: str | None = None) -> None:
            settings = get_settings()
            with (
                log_context(scheduler=job_id),
                recorded_run(get_engine(), job_id, tick_id, settings.scheduler_instance_id) as record,
            ):
                if record is not None:
                    record.items = tick()

        return run

    return decorate
