"""Actors of the ``session-processing`` queue: analysing a chunk of sessions, and the sweep."""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import dramatiq
import openai

from pipeline.actors.handoff import send_sessions_for_analysis
from pipeline.actors.periodic import periodic, recorded_tick
from pipeline.actors.retries import should_retry
from pipeline.analysis.openai_calls import openai_client
from pipeline.db.engine import get_engine
from pipeline.queues import SESSION_PROCESSING
from pipeline.settings import get_settings
from pipeline.stages import batch_enqueue, session_analysis, session_sweep

__all__ = ["analyse_synchronously", "analyze_sessions", "openai_for_worker", "session_processing_sweep"]

logger = logging.getLogger(__name__)
settings = get_settings()

#: Runs the chat completions of every worker thread: at most SESSION_PROCESSING_CONCURRENCY in flight.
_calls = ThreadPoolExecutor(max_workers=settings.session_processing_concurrency, thread_name_prefix="openai")


@lru_cache(maxsize=1)
def openai_for_worker() -> openai.OpenAI:
    """One OpenAI client per worker process, shared by its threads (connection pooling)."""
    return openai_client(settings)


def analyse_synchronously(session_ids: list[uuid.UUID]) -> None:
    result = session_analysis.analyze_sessions(
        get_engine(), settings, session_ids, client=openai_for_worker(), calls=_calls
    )
    logger.info(
        "sessions: %d claimed, %d analysed, %d failed", result.claimed, result.completed, result.failed
    )


@dramatiq.actor(
    queue_name=SESSION_PROCESSING, retry_when=should_retry, time_limit=settings.actor_time_limit_ms
)
def analyze_sessions(session_ids: list[str]) -> None:
    """Queue a chunk of sessions for the Batch API, or analyse them at once (AI_PROCESSING_MODE)."""
    ids = [uuid.UUID(item) for item in session_ids]
    if settings.ai_processing_mode == "batch":
        queued = batch_enqueue.enqueue_for_batch(get_engine(), settings, ids)
        logger.info("sessions: %d queued for the Batch API", queued)
    else:
        analyse_synchronously(ids)


@dramatiq.actor(
    queue_name=SESSION_PROCESSING,
    max_retries=0,
    time_limit=60_000,
    **periodic(settings.session_processing_interval),
)
@recorded_tick("session-processing")
def session_processing_sweep() -> int:
    """Send again the sessions ready for analysis whose message was lost or whose worker died."""
    result = session_sweep.sweep_sessions(get_engine(), settings, send_sessions_for_analysis)
    logger.info("session sweep: %d sessions sent, oldest waiting %.0f s", result.sent, result.lag_seconds)
    return result.sent
