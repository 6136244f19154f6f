"""``livedash scheduler``: run the cron scheduler (any number of replicas may run)."""

from __future__ import annotations


def scheduler() -> None:
    """Send each cron tick once across all replicas, catch up missed ticks, honour pause and stop.

    Ticks are recorded in the database before they are sent; see `livedash schedulers list`."""
    from pipeline.pool_metrics import keep_metrics_in_memory

    keep_metrics_in_memory()
    from pipeline.runners.scheduler import run_scheduler
    from pipeline.settings import get_settings, refuse_weak_secrets

    settings = get_settings()
    refuse_weak_secrets(settings)
    run_scheduler(settings)
