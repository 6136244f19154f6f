"""The queue of each stage: the scheduler ids, one worker pool per queue.

A module of its own, outside `pipeline.actors`, so that naming a queue never builds the broker."""

from __future__ import annotations

__all__ = ["ALL_QUEUES", "BATCH_PROCESSING", "CSV_IMPORT", "IMPORT_PROCESSING", "SESSION_PROCESSING"]

CSV_IMPORT = "csv-import"
IMPORT_PROCESSING = "import-processing"
SESSION_PROCESSING = "session-processing"
BATCH_PROCESSING = "batch-processing"

ALL_QUEUES = (CSV_IMPORT, IMPORT_PROCESSING, SESSION_PROCESSING, BATCH_PROCESSING)
