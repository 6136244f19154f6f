"""Actors of the ``import-processing`` queue: a chunk of imports, and the sweep that catches what was lost."""

from __future__ import annotations

import logging
import uuid
from functools import lru_cache

import dramatiq

from pipeline.actors.handoff import send_imports_for_processing, send_sessions_for_analysis
from pipeline.actors.periodic import periodic, recorded_tick
from pipeline.actors.retries import should_retry
from pipeline.db.engine import get_engine
from pipeline.queues import IMPORT_PROCESSING
from pipeline.settings import get_settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages import import_processing, import_sweep

__all__ = ["import_processing_sweep", "process_imports"]

logger = logging.getLogger(__name__)
settings = get_settings()


@lru_cache(maxsize=1)
def _fetcher() -> Fetcher:
    """One HTTP client per worker process for every transcript, so connections to a company are reused."""
    return Fetcher(import_processing.transcript_fetcher_limits(settings))


@dramatiq.actor(
    queue_name=IMPORT_PROCESSING, retry_when=should_retry, time_limit=settings.import_processing_timeout
)
def process_imports(import_ids: list[str]) -> None:
    """Derive the sessions of a chunk of imports and hand the analysable ones to session processing."""
    result = import_processing.process_imports(
        get_engine(),
        settings,
        [uuid.UUID(item) for item in import_ids],
        fetcher=_fetcher(),
        hand_over=send_sessions_for_analysis,
    )
    logger.info(
        "imports: %d claimed, %d completed, %d failed, %d retrying later, %d sessions to analyse",
        result.claimed,
        result.completed,
        result.failed,
        result.retrying,
        len(result.analysable),
    )


@dramatiq.actor(
    queue_name=IMPORT_PROCESSING,
    max_retries=0,
    time_limit=60_000,
    **periodic(settings.import_processing_interval),
)
@recorded_tick("import-processing")
def import_processing_sweep() -> int:
    """Send again the imports whose message was lost, whose worker died or whose backoff has passed."""
    result = import_sweep.sweep_imports(get_engine(), settings, send_imports_for_processing)
    logger.info(
        "import sweep: %d failed imports due for retry, %d imports sent, oldest waiting %.0f s",
        result.retried,
        result.sent,
        result.lag_seconds,
    )
    return result.sent
