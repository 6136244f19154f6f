"""Each stage's entry points: what its actors run, what ``livedash schedulers trigger --inline`` runs and what
the demo's workers run, with the same arguments (a :class:`StageRuntime` and the message's arguments).

A tick returns a :class:`Report` whose ``items`` go into its run; a work entry point returns one whose text is
logged by the worker and printed by ``--inline``. Sending on goes through the runtime, so the same function
publishes on a worker and runs the next step in this process inline.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from pipeline.errors import is_transient
from pipeline.scheduling.jobs import ANALYZE_SESSIONS, IMPORT_COMPANY, PROCESS_IMPORTS, SUBMIT_BATCH
from pipeline.stages import (
    batch_check,
    batch_enqueue,
    batch_submit,
    csv_import,
    import_processing,
    import_sweep,
    session_analysis,
    session_sweep,
)
from pipeline.stages.runtime import StageRuntime

__all__ = [
    "Report",
    "analyze_sessions",
    "batch_check_tick",
    "batch_submit_tick",
    "csv_import_tick",
    "import_company",
    "import_processing_sweep",
    "process_imports",
    "session_processing_sweep",
    "submit_batch",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Report:
    """What one call did: ``items`` handled (a tick's run records them) and a one-line summary."""

    items: int
    text: str

    def __str__(self) -> str:
        return self.text


def _grace(runtime: StageRuntime) -> timedelta:
    """How long a pending item waits for its message before the sweep sends it again (``SWEEP_GRACE_MS``);
    none in an inline run, which sweeps every waiting item."""
    return timedelta(0) if runtime.sweep_everything else runtime.settings.sweep_grace


# --- csv-import --------------------------------------------------------------------------------------------


def csv_import_tick(runtime: StageRuntime) -> Report:
    """Send one import message per ACTIVE company of this deployment."""
    sent = 0
    with runtime.session_factory() as db:
        company_ids = list(csv_import.due_company_ids(db, runtime.settings))
    for company_id in company_ids:
        runtime.send(IMPORT_COMPANY, str(company_id))
        sent += 1
    return Report(sent, f"csv-import tick: {sent} companies sent for import")


def import_company(runtime: StageRuntime, company_id: str) -> Report:
    """Import one company's CSV and hand its new and changed rows to import processing.

    A transient failure (5xx, timeout, no free import slot) raises, so the message is retried with backoff. A
    permanent one (401, 404, a body that is not a CSV) is recorded on its fetch and reported; retrying cannot
    help, and dead-lettering it would add a dead letter per tick for as long as the company's setup is wrong.
    """
    try:
        result = csv_import.import_company_csv(
            runtime.engine,
            runtime.settings,
            uuid.UUID(company_id),
            fetcher=runtime.csv_fetcher,
            hand_over=lambda ids: runtime.hand_over(PROCESS_IMPORTS, ids),
        )
    except csv_import.CsvImportFailed as failure:
        if is_transient(failure):
            raise
        logger.warning(
            "company %s: import failed, not retried (recorded on its fetch): %s", company_id, failure
        )
        return Report(0, f"{company_id} FAILED {failure}")
    outcome = result.outcome.value if result.outcome else "SKIPPED (already importing or inactive)"
    return Report(
        result.rows_new + result.rows_changed,
        f"{company_id} {outcome} new={result.rows_new} changed={result.rows_changed} "
        f"duplicate={result.rows_duplicate} invalid={result.rows_invalid}",
    )


# --- import-processing -------------------------------------------------------------------------------------


def import_processing_sweep(runtime: StageRuntime) -> Report:
    """Send again the imports whose message was lost, whose worker died or whose backoff has passed."""
    result = import_sweep.sweep_imports(
        runtime.engine,
        runtime.settings,
        lambda ids: runtime.send(PROCESS_IMPORTS, [str(item) for item in ids]),
        grace=_grace(runtime),
    )
    return Report(
        result.sent,
        f"import sweep: {result.retried} failed imports due for retry, {result.sent} imports sent, "
        f"oldest waiting {result.lag_seconds:.0f} s",
    )


def process_imports(runtime: StageRuntime, import_ids: list[str]) -> Report:
    """Derive the sessions of a chunk of imports and hand the analysable ones to session processing."""
    result = import_processing.process_imports(
        runtime.engine,
        runtime.settings,
        [uuid.UUID(item) for item in import_ids],
        fetcher=runtime.transcript_fetcher,
        hand_over=lambda ids: runtime.hand_over(ANALYZE_SESSIONS, ids),
    )
    return Report(
        result.completed,
        f"imports: {result.claimed} claimed, {result.completed} completed, {result.failed} failed, "
        f"{result.retrying} retrying later, {len(result.analysable)} sessions to analyse",
    )


# --- session-processing ------------------------------------------------------------------------------------


def session_processing_sweep(runtime: StageRuntime) -> Report:
    """Send again the sessions ready for analysis whose message was lost or whose worker died."""
    result = session_sweep.sweep_sessions(
        runtime.engine,
        runtime.settings,
        lambda ids: runtime.send(ANALYZE_SESSIONS, [str(item) for item in ids]),
        grace=_grace(runtime),
    )
    return Report(
        result.sent, f"session sweep: {result.sent} sessions sent, oldest waiting {result.lag_seconds:.0f} s"
    )


def _analyse_now(runtime: StageRuntime, session_ids: list[uuid.UUID]) -> Report:
    result = session_analysis.analyze_sessions(
        runtime.engine, runtime.settings, session_ids, client=runtime.openai, calls=runtime.calls
    )
    return Report(
        result.completed,
        f"sessions: {result.claimed} claimed, {result.completed} analysed, {result.failed} failed, "
        f"{result.retrying} to retry",
    )


def analyze_sessions(runtime: StageRuntime, session_ids: list[str]) -> Report:
    """Queue a chunk of sessions for the Batch API, or analyse them at once (AI_PROCESSING_MODE)."""
    ids = [uuid.UUID(item) for item in session_ids]
    if runtime.settings.ai_processing_mode == "sync":
        return _analyse_now(runtime, ids)
    queued = batch_enqueue.enqueue_for_batch(runtime.engine, runtime.settings, ids)
    return Report(queued, f"sessions: {queued} queued for the Batch API")


# --- batch-processing and batch-processing-check -----------------------------------------------------------


def batch_submit_tick(runtime: StageRuntime) -> Report:
    """Commit the batches that are due, then send each to be submitted."""
    planned = batch_submit.plan_batches(runtime.engine, runtime.settings)
    for batch_id in planned:
        runtime.send(SUBMIT_BATCH, str(batch_id))
    return Report(len(planned), f"batch submit tick: {len(planned)} batches planned")


def submit_batch(runtime: StageRuntime, batch_id: str) -> Report:
    """Upload and create one planned batch; a retry adopts what an earlier attempt already created."""
    status = batch_submit.submit_batch(
        runtime.engine,
        runtime.openai,
        uuid.UUID(batch_id),
        max_prompt_tokens=runtime.settings.openai_max_prompt_tokens,
    )
    return Report(1 if status else 0, f"batch {batch_id}: {status.value if status else 'unknown'}")


def batch_check_tick(runtime: StageRuntime) -> Report:
    """Poll every open batch and ingest, release or cancel as its state says; the sessions of a failed batch
    are analysed at once when BATCH_SYNC_FALLBACK is on."""
    fallback: list[Report] = []
    result = batch_check.check_batches(
        runtime.engine,
        runtime.settings,
        runtime.openai,
        analyse_sync=lambda ids: fallback.append(_analyse_now(runtime, ids)),
    )
    return Report(
        result.polled,
        f"batch check: {result.polled} polled, {result.ingested} ingested, {result.failed} failed, "
        f"{result.resubmitted} resubmitted, {result.cancelled} cancelled, {result.poll_errors} poll errors, "
        f"{result.ingest_errors} ingest errors" + "".join(f"; fallback {report}" for report in fallback),
    )
