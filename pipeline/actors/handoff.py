"""Handing work to the next stage: chunks of ids as messages, never one message per row.

A message is only a nudge (architecture §4.0): if publishing fails, the work is still in the database and the
next stage's sweep finds it, so a failed publish is counted and logged, not raised into the stage that
already committed its work.
"""

from __future__ import annotations

import logging
import uuid

import dramatiq

from pipeline import metrics
from pipeline.actors.queues import IMPORT_PROCESSING

__all__ = ["PROCESS_IMPORTS_ACTOR", "send_imports_for_processing"]

logger = logging.getLogger(__name__)

#: The import-processing actor that receives chunks of SessionImport ids.
PROCESS_IMPORTS_ACTOR = "process_imports"


def send_imports_for_processing(import_ids: list[uuid.UUID]) -> None:
    broker = dramatiq.get_broker()
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=IMPORT_PROCESSING,
        actor_name=PROCESS_IMPORTS_ACTOR,
        args=([str(import_id) for import_id in import_ids],),
        kwargs={},
        options={},
    )
    try:
        broker.declare_queue(IMPORT_PROCESSING)
        broker.enqueue(message)
    except Exception:
        metrics.PUBLISH_FAILURES.labels(IMPORT_PROCESSING).inc()
        logger.exception(
            "could not hand %d imports to %s; the sweep will pick them up", len(import_ids), IMPORT_PROCESSING
        )
