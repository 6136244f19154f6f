"""Actors of the ``csv-import`` queue: the cron tick that fans out per company, and one company's import."""

from __future__ import annotations

import logging
import uuid
from functools import lru_cache

import dramatiq

from pipeline.actors.handoff import send_imports_for_processing
from pipeline.actors.periodic import periodic, recorded_tick
from pipeline.actors.retries import should_retry
from pipeline.db.engine import get_engine, get_session_factory
from pipeline.errors import is_transient
from pipeline.queues import CSV_IMPORT
from pipeline.settings import get_settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages.csv_import import (
    CsvImportFailed,
    due_company_ids,
    fetch_limits,
    import_company_csv,
)

__all__ = ["csv_import_tick", "import_company"]

logger = logging.getLogger(__name__)
settings = get_settings()

#: Margin between the import's own overall timeout and the actor's hard time limit.
_TIME_LIMIT_MARGIN_MS = 60_000


@lru_cache(maxsize=1)
def _fetcher() -> Fetcher:
    """One HTTP client per worker process, shared by its threads, so connections are reused."""
    return Fetcher(fetch_limits(settings))


@dramatiq.actor(
    queue_name=CSV_IMPORT, max_retries=0, time_limit=60_000, **periodic(settings.csv_import_interval)
)
@recorded_tick("csv-import")
def csv_import_tick() -> int:
    """Send one import message per ACTIVE company of this deployment."""
    sent = 0
    with get_session_factory()() as db:
        for company_id in due_company_ids(db, settings):
            import_company.send(str(company_id))
            sent += 1
    logger.info("csv-import tick: %d companies sent for import", sent)
    return sent


@dramatiq.actor(
    queue_name=CSV_IMPORT,
    retry_when=should_retry,
    time_limit=min(
        settings.csv_import_timeout + _TIME_LIMIT_MARGIN_MS,
        settings.rabbitmq_consumer_timeout_ms - _TIME_LIMIT_MARGIN_MS,
    ),
)
def import_company(company_id: str) -> None:
    """Import one company's CSV and hand its new and changed rows to import processing.

    A transient failure (5xx, timeout) raises, so the message is retried with backoff. A permanent one (401,
    404, a body that is not a CSV) is recorded on its fetch and counted; retrying cannot help, and
    dead-lettering it would add a dead letter per tick for as long as the company's setup is wrong."""
    try:
        result = import_company_csv(
            get_engine(),
            settings,
            uuid.UUID(company_id),
            fetcher=_fetcher(),
            hand_over=send_imports_for_processing,
        )
    except CsvImportFailed as failure:
        if is_transient(failure):
            raise
        logger.warning(
            "company %s: import failed, not retried (recorded on its fetch): %s", company_id, failure
        )
        return
    logger.info(
        "company %s: %s, %d new, %d changed, %d duplicate, %d invalid",
        company_id,
        result.outcome.value if result.outcome else "skipped (already importing or inactive)",
        result.rows_new,
        result.rows_changed,
        result.rows_duplicate,
        result.rows_invalid,
    )
