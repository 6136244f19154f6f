"""``livedash worker``: run one stage's worker pool (the standalone runner of one scheduler)."""

from __future__ import annotations

import os

import typer

from pipeline.cli.errors import exit_not_found, exit_with_usage_error


def worker(
    scheduler_id: str | None = typer.Option(
        None, "--scheduler", metavar="SCHEDULER", help="The scheduler whose queue this pool consumes."
    ),
    processes: int | None = typer.Option(None, "--processes", "-p", min=1, help="Default: WORKER_PROCESSES."),
    threads: int | None = typer.Option(None, "--threads", "-t", min=1, help="Default: WORKER_THREADS."),
    list_only: bool = typer.Option(False, "--list", help="List the schedulers and their queues, then exit."),
) -> None:
    """Run the worker pool of one scheduler's queue: `dramatiq` with the pipeline's actors, sizes and metrics.

    SIGTERM lets in-flight messages finish within WORKER_SHUTDOWN_GRACE_SECONDS; what is left is redelivered
    to other replicas by RabbitMQ."""
    from pipeline.scheduling.jobs import UnknownScheduler, scheduled_jobs
    from pipeline.settings import get_settings, refuse_weak_secrets

    settings = get_settings()
    if list_only:
        for job in scheduled_jobs(settings):
            typer.echo(f"{job.id:<24} queue {job.queue:<20} {job.setting}={job.cron}")
        return
    if scheduler_id is None:
        exit_with_usage_error("--scheduler is required (see --list)")
    refuse_weak_secrets(settings)
    from pipeline.runners.worker import worker_command

    try:
        command = worker_command(settings, scheduler_id, processes=processes, threads=threads)
    except UnknownScheduler as exc:
        exit_not_found(str(exc))
    # Replace this process, so that signals reach Dramatiq's main process directly.
    os.execv(command.argv[0], command.argv)  # noqa: S606  our own argv: the python of this venv
