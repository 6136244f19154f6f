"""Actors of the ``batch-processing`` queue: the submit tick, one batch's submission, and the check tick.

Waiting for OpenAI is driven by the check tick and database state only: no delayed message ever waits for
a batch, so nothing outlives RabbitMQ's consumer timeout.
"""

from __future__ import annotations

import logging
import uuid

import dramatiq

from pipeline.actors.periodic import periodic, recorded_tick
from pipeline.actors.retries import should_retry
from pipeline.actors.session_processing import analyse_synchronously, openai_for_worker
from pipeline.db.engine import get_engine
from pipeline.queues import BATCH_PROCESSING
from pipeline.settings import get_settings
from pipeline.stages import batch_check, batch_submit

__all__ = ["batch_check_tick", "batch_submit_tick", "submit_batch"]

logger = logging.getLogger(__name__)
settings = get_settings()


@dramatiq.actor(
    queue_name=BATCH_PROCESSING,
    max_retries=0,
    time_limit=120_000,
    **periodic(settings.batch_processing_interval),
)
@recorded_tick("batch-processing")
def batch_submit_tick() -> int:
    """Commit the batches that are due, then send each to be submitted."""
    planned = batch_submit.plan_batches(get_engine(), settings)
    for batch_id in planned:
        submit_batch.send(str(batch_id))
    logger.info("batch submit tick: %d batches planned", len(planned))
    return len(planned)


@dramatiq.actor(queue_name=BATCH_PROCESSING, retry_when=should_retry, time_limit=settings.actor_time_limit_ms)
def submit_batch(batch_id: str) -> None:
    """Upload and create one planned batch; a retry adopts what an earlier attempt already created."""
    status = batch_submit.submit_batch(get_engine(), openai_for_worker(), uuid.UUID(batch_id))
    logger.info("batch %s: %s", batch_id, status.value if status else "unknown")


@dramatiq.actor(
    queue_name=BATCH_PROCESSING,
    max_retries=0,
    time_limit=settings.actor_time_limit_ms,
    **periodic(settings.batch_processing_check_interval),
)
@recorded_tick("batch-processing-check")
def batch_check_tick() -> int:
    """Poll every open batch and ingest, release or cancel as its state says."""
    result = batch_check.check_batches(
        get_engine(), settings, openai_for_worker(), analyse_sync=analyse_synchronously
    )
    logger.info(
        "batch check: %d polled, %d ingested, %d failed, %d resubmitted, %d cancelled, %d poll errors",
        result.polled,
        result.ingested,
        result.failed,
        result.resubmitted,
        result.cancelled,
        result.poll_errors,
    )
    return result.polled
