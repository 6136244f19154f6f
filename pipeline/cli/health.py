"""``livedash health``: serve the health aggregator and admin API (``docs/health.md``)."""

from __future__ import annotations

import logging

import typer

from pipeline.cli.errors import exit_with_usage_error


def health(
    host: str | None = typer.Option(None, "--host", help="Address to listen on. Default: HEALTH_HOST."),
    port: int | None = typer.Option(
        None, "--port", min=0, max=65535, help="Port to listen on. Default: HEALTH_PORT."
    ),
) -> None:
    """Serve the scheduler health and admin API (docs/health.md).

    Sources: worker pool metrics (HEALTH_METRICS_TARGETS or PROMETHEUS_URL), RabbitMQ, the database.
    """
    from pipeline.pool_metrics import keep_metrics_in_memory

    keep_metrics_in_memory()
    import uvicorn

    from pipeline.db.engine import get_engine
    from pipeline.health.api import create_app
    from pipeline.health.targets import TargetsError
    from pipeline.logs import configure_logging
    from pipeline.settings import get_settings, refuse_weak_secrets

    settings = get_settings()
    refuse_weak_secrets(settings)
    configure_logging(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per source read otherwise
    try:
        app = create_app(settings, engine=get_engine())
    except TargetsError as exc:
        exit_with_usage_error(str(exc))
    # log_config=None keeps the pipeline's logging (text or JSON lines, secrets masked) for uvicorn's loggers;
    # no access log: probes would flood it, and admin actions are logged by the API itself.
    uvicorn.run(
        app,
        host=host if host is not None else settings.health_host,
        port=port if port is not None else settings.health_port,
        log_config=None,
        access_log=False,
    )
