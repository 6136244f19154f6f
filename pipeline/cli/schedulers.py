"""``livedash schedulers``: list the schedulers, and pause, resume, start, stop or trigger one."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import typer
from dramatiq import Message
from rich.console import Console
from rich.table import Table

from pipeline.cli.errors import exit_with_usage_error
from pipeline.scheduling.jobs import UnknownScheduler, find_job
from pipeline.settings import get_settings

if TYPE_CHECKING:
    from pipeline.scheduling.control import ActionResult

app = typer.Typer(help="The cron schedulers of the pipeline.", no_args_is_help=True)

SCHEDULER_ARGUMENT = typer.Argument(..., metavar="SCHEDULER", help="Scheduler id, e.g. csv-import.")


def _import_processing_inline() -> None:
    from datetime import timedelta

    from pipeline.actors.handoff import send_sessions_for_analysis
    from pipeline.db.engine import get_engine
    from pipeline.sources.http_fetch import Fetcher
    from pipeline.stages.import_processing import process_imports, transcript_fetcher_limits
    from pipeline.stages.import_sweep import sweep_imports

    settings = get_settings()
    chunks: list[list[uuid.UUID]] = []
    sweep = sweep_imports(get_engine(), settings, chunks.append, grace=timedelta(0))
    completed = failed = retrying = analysable = 0
    with Fetcher(transcript_fetcher_limits(settings)) as fetcher:
        for chunk in chunks:
            result = process_imports(
                get_engine(), settings, chunk, fetcher=fetcher, hand_over=send_sessions_for_analysis
            )
            completed += result.completed
            failed += result.failed
            retrying += result.retrying
            analysable += len(result.analysable)
    typer.echo(
        f"imports: {sweep.sent} waiting, {completed} completed, {failed} failed, {retrying} to retry later; "
        f"{analysable} sessions ready for analysis"
    )


def _session_processing_inline() -> None:
    from concurrent.futures import ThreadPoolExecutor
    from datetime import timedelta

    from pipeline.analysis.openai_calls import openai_client
    from pipeline.db.engine import get_engine
    from pipeline.stages.session_analysis import analyze_sessions
    from pipeline.stages.session_sweep import sweep_sessions

    settings = get_settings()
    chunks: list[list[uuid.UUID]] = []
    sweep = sweep_sessions(get_engine(), settings, chunks.append, grace=timedelta(0))
    if settings.ai_processing_mode == "batch":
        from pipeline.stages.batch_enqueue import enqueue_for_batch

        queued = sum(enqueue_for_batch(get_engine(), settings, chunk) for chunk in chunks)
        typer.echo(f"sessions: {sweep.sent} waiting for analysis, {queued} queued for the Batch API")
        return
    completed = failed = 0
    with (
        openai_client(settings) as client,
        ThreadPoolExecutor(max_workers=settings.session_processing_concurrency) as calls,
    ):
        for chunk in chunks:
            result = analyze_sessions(get_engine(), settings, chunk, client=client, calls=calls)
            completed += result.completed
            failed += result.failed
    typer.echo(f"sessions: {sweep.sent} waiting for analysis, {completed} analysed, {failed} failed")


def _batch_processing_inline() -> None:
    from pipeline.analysis.openai_calls import openai_client
    from pipeline.db.engine import get_engine
    from pipeline.stages.batch_check import check_batches
    from pipeline.stages.batch_submit import plan_batches, submit_batch

    settings = get_settings()
    with openai_client(settings) as client:
        planned = plan_batches(get_engine(), settings)
        for batch_id in planned:
            submit_batch(get_engine(), client, batch_id)
        checked = check_batches(get_engine(), settings, client)
    typer.echo(
        f"batches: {len(planned)} submitted, {checked.polled} polled, {checked.ingested} ingested, "
        f"{checked.failed} failed, {checked.poll_errors} could not be polled"
    )


def _csv_import_inline() -> None:
    from pipeline.actors.handoff import send_imports_for_processing
    from pipeline.db.engine import get_engine, get_session_factory
    from pipeline.sources.http_fetch import Fetcher
    from pipeline.stages.csv_import import (
        CsvImportFailed,
        ImportCapacityReached,
        due_company_ids,
        fetch_limits,
        import_company_csv,
    )

    settings = get_settings()
    with get_session_factory()() as db:
        company_ids = list(due_company_ids(db, settings))
    with Fetcher(fetch_limits(settings)) as fetcher:
        for company_id in company_ids:
            try:
                result = import_company_csv(
                    get_engine(), settings, company_id, fetcher=fetcher, hand_over=send_imports_for_processing
                )
            except (CsvImportFailed, ImportCapacityReached) as exc:
                typer.echo(f"{company_id} FAILED {exc}")
                continue
            outcome = result.outcome.value if result.outcome else "SKIPPED (already importing)"
            typer.echo(
                f"{company_id} {outcome} new={result.rows_new} changed={result.rows_changed} "
                f"duplicate={result.rows_duplicate} invalid={result.rows_invalid}"
            )


def _apply(action: str, scheduler_id: str) -> ActionResult:
    from pipeline.db.engine import get_engine
    from pipeline.scheduling.control import apply_action

    def publish_with_workers(message: Message[None]) -> Message[None]:
        from pipeline.actors import broker

        return broker.enqueue(message)

    try:
        return apply_action(
            get_engine(),
            get_settings(),
            action,
            scheduler_id,
            publish=publish_with_workers,
            requested_by="livedash CLI",
        )
    except UnknownScheduler as exc:
        exit_with_usage_error(str(exc))


@app.command()
def trigger(
    scheduler_id: str = SCHEDULER_ARGUMENT,
    inline: bool = typer.Option(
        False, "--inline", help="Run the tick's work in this process, not on workers."
    ),
) -> None:
    """Run a scheduler's tick now: enqueue it for the workers, or run it here with --inline."""
    try:
        find_job(get_settings(), scheduler_id)
    except UnknownScheduler as exc:
        exit_with_usage_error(str(exc))
    if inline:
        {
            "csv-import": _csv_import_inline,
            "import-processing": _import_processing_inline,
            "session-processing": _session_processing_inline,
            "batch-processing": _batch_processing_inline,
            "batch-processing-check": _batch_processing_inline,
        }[scheduler_id]()
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
    from pipeline.scheduling.overview import scheduler_overviews

    settings = get_settings()
    overviews = scheduler_overviews(get_engine(), settings)
    if as_json:
        typer.echo(json.dumps([overview.as_json() for overview in overviews], indent=2))
        return
    table = Table("id", "name", "queue", "cron", "state", "last run", "next run", "24 h runs / failed")
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
    Console(width=160).print(table)
