"""``livedash schedulers``: list the schedulers, and pause, resume, start, stop or trigger one."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import typer

from pipeline.cli.errors import exit_not_found, exit_with_usage_error
from pipeline.cli.output import new_table, print_json, print_tables

if TYPE_CHECKING:
    from pipeline.scheduling.control import ActionResult

app = typer.Typer(help="The cron schedulers of the pipeline.", no_args_is_help=True)

SCHEDULER_ARGUMENT = typer.Argument(..., metavar="SCHEDULER", help="Scheduler id, e.g. csv-import.")


def _apply(action: str, scheduler_id: str) -> ActionResult:
    from pipeline.db.engine import get_engine
    from pipeline.publishing import Publisher
    from pipeline.scheduling.control import apply_action
    from pipeline.scheduling.jobs import UnknownScheduler
    from pipeline.settings import get_settings

    # By queue and actor name from the job registry: this process declares no actor.
    publisher = Publisher(get_settings())
    try:
        return apply_action(
            get_engine(), get_settings(), action, scheduler_id, publish=publisher, requested_by="livedash CLI"
        )
    except UnknownScheduler as exc:
        exit_not_found(str(exc))
    finally:
        publisher.close()


@app.command()
def trigger(
    scheduler_id: str = SCHEDULER_ARGUMENT,
    inline: bool = typer.Option(
        False, "--inline", help="Run the tick's work in this process, not on workers."
    ),
) -> None:
    """Run a scheduler's tick now: enqueue it for the workers, or run it here with --inline."""
    from pipeline.scheduling.jobs import UnknownScheduler, find_job
    from pipeline.settings import get_settings

    try:
        find_job(get_settings(), scheduler_id)
    except UnknownScheduler as exc:
        exit_not_found(str(exc))
    if inline:
        from pipeline.db.engine import get_engine
        from pipeline.stages.inline import run_inline

        for line in run_inline(get_settings(), scheduler_id, engine=get_engine()):
            typer.echo(line)
        return
    if get_settings().broker == "memory":
        exit_with_usage_error("BROKER=memory has no workers outside this process: use --inline")
    result = _apply("trigger", scheduler_id)
    for decision in result.triggered:
        typer.echo(f"enqueued {decision.job_id} tick as message {decision.message_id}")


def _control(action: str, scheduler_id: str) -> None:
    result = _apply(action, scheduler_id)
    typer.echo(f"{scheduler_id}: {result.message}")


@app.command()
def pause(scheduler_id: str = SCHEDULER_ARGUMENT) -> None:
    """Pause a scheduler: every replica records its ticks as skipped until it is resumed."""
    _control("pause", scheduler_id)


@app.command()
def resume(scheduler_id: str = SCHEDULER_ARGUMENT) -> None:
    """Resume a paused (or stopped) scheduler at its next tick."""
    _control("resume", scheduler_id)


@app.command()
def stop(scheduler_id: str = SCHEDULER_ARGUMENT) -> None:
    """Stop a scheduler: no tick runs until it is started."""
    _control("stop", scheduler_id)


@app.command()
def start(scheduler_id: str = SCHEDULER_ARGUMENT) -> None:
    """Start a stopped (or paused) scheduler at its next tick."""
    _control("start", scheduler_id)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Every scheduler: id, name, queue, cron, state, last run and next run (times in UTC)."""
    from pipeline.db.engine import get_engine
    from pipeline.scheduling.jobs import scheduled_jobs
    from pipeline.scheduling.overview import scheduler_overviews
    from pipeline.scheduling.records import scheduler_record
    from pipeline.settings import get_settings

    settings = get_settings()
    overviews = scheduler_overviews(get_engine(), settings)
    if as_json:
        jobs = {job.id: job for job in scheduled_jobs(settings)}
        print_json(
            [
                scheduler_record(jobs[overview.id], settings, overview).model_dump(mode="json")
                for overview in overviews
            ]
        )
        return
    table = new_table("id", "name", "queue", "cron", "state", "last run", "next run", "24 h runs / failed")
    for overview in overviews:
        state = overview.control if settings.scheduler_enabled else "DISABLED"
        if overview.running_now:
            state += " (running)"
        last = f"{_when(overview.last_run_at)} {overview.last_run_status or ''}".strip()
        table.add_row(
            overview.id,
            overview.name,
            overview.queue,
            overview.cron,
            state,
            last,
            _when(overview.next_run_at),
            f"{overview.recent_runs} / {overview.recent_failures}",
        )
    print_tables(table)
