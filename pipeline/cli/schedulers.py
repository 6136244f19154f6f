"""``livedash schedulers``: run a scheduler's tick now."""

from __future__ import annotations

import uuid

import typer

from pipeline.cli.errors import exit_with_usage_error
from pipeline.settings import get_settings

app = typer.Typer(help="The cron schedulers of the pipeline.", no_args_is_help=True)

#: Scheduler ids (the seed's) that can be triggered from here.
TRIGGERABLE = ("csv-import", "import-processing", "session-processing", "batch-processing")


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


@app.command()
def trigger(
    scheduler_id: str = typer.Argument(..., metavar="SCHEDULER", help="Scheduler id, e.g. csv-import."),
    inline: bool = typer.Option(
        False, "--inline", help="Run the tick's work in this process, not on workers."
    ),
) -> None:
    """Run a scheduler's tick now: enqueue it for the workers, or run it here with --inline."""
    if scheduler_id not in TRIGGERABLE:
        exit_with_usage_error(f"unknown scheduler {scheduler_id!r} (known: {', '.join(TRIGGERABLE)})")
    if inline:
        {
            "csv-import": _csv_import_inline,
            "import-processing": _import_processing_inline,
            "session-processing": _session_processing_inline,
            "batch-processing": _batch_processing_inline,
        }[scheduler_id]()
        return
    if get_settings().broker == "memory":
        exit_with_usage_error("BROKER=memory has no workers outside this process: use --inline")
    from pipeline.actors.batch_processing import batch_check_tick, batch_submit_tick
    from pipeline.actors.csv_import import csv_import_tick
    from pipeline.actors.import_processing import import_processing_sweep
    from pipeline.actors.session_processing import session_processing_sweep

    tick = {
        "csv-import": csv_import_tick,
        "import-processing": import_processing_sweep,
        "session-processing": session_processing_sweep,
        "batch-processing": batch_submit_tick,
    }[scheduler_id]
    message = tick.send()
    if scheduler_id == "batch-processing":
        batch_check_tick.send()
    typer.echo(f"enqueued {scheduler_id} tick as message {message.message_id}")
