"""Handing work to the next stage: chunks of ids as messages, never one message per row.

A message is only a nudge (``docs/architecture.md``, invariant 1): if publishing fails, the work is still in
the database and the next stage's sweep finds it, so a failed publish is counted and logged, not raised into
the stage that already committed its work.
"""

from __future__ import annotations

import logging
import uuid

import dramatiq

from pipeline import metrics
from pipeline.queues import IMPORT_PROCESSING, SESSION_PROCESSING

__all__ = [
    "ANALYZE_SESSIONS_ACTOR",
    "PROCESS_IMPORTS_ACTOR",
    "send_imports_for_processing",
    "send_sessions_for_analysis",
]

logger = logging.getLogger(__name__)

#: The import-processing actor that receives chunks of SessionImport ids.
PROCESS_IMPORTS_ACTOR = "process_imports"
#: The session-processing actor that receives chunks of Session ids to analyse.
ANALYZE_SESSIONS_ACTOR = "analyze_sessions"


def _send(queue: str, actor: str, ids: list[uuid.UUID]) -> None:
    # By name rather than through the actor object: the receiving stage's pool may run code this one lacks.
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=queue, actor_name=actor, args=([str(item) for item in ids],), kwargs={}, options={}
    )
    broker = dramatiq.get_broker()
    try:
        broker.declare_queue(queue)
        broker.enqueue(message)
    except Exception:
        metrics.PUBLISH_FAILURES.labels(queue).inc()
        logger.exception("could not hand %d ids to %s; its sweep will pick them up", len(ids), queue)


def send_imports_for_processing(import_ids: list[uuid.UUID]) -> None:
    _send(IMPORT_PROCESSING, PROCESS_IMPORTS_ACTOR, import_ids)


def send_sessions_for_analysis(session_ids: list[uuid.UUID]) -> None:
    _send(SESSION_PROCESSING, ANALYZE_SESSIONS_ACTOR, session_ids)
