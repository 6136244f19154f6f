"""``livedash run``: the scheduler, a worker pool per queue and the health API, supervised together."""

from __future__ import annotations

import typer


def run() -> None:
    """Run everything in one supervised process group (the single-process pattern).

    A crashed child is restarted with backoff (SCHEDULER_AUTO_RESTART, SCHEDULER_MAX_RESTARTS); SIGTERM
    stops every child gracefully. Worker pools take consecutive metrics ports from METRICS_PORT."""
    from pipeline.logs import configure_logging
    from pipeline.runners.supervisor import Supervisor, children_for
    from pipeline.settings import get_settings, refuse_weak_secrets

    settings = get_settings()
    refuse_weak_secrets(settings)
    configure_logging(settings)
    raise typer.Exit(Supervisor(settings, children_for(settings)).run())
