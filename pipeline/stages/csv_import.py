"""The CSV import stage: which companies are due, and importing one company's CSV.

Callable without a broker: the ``csv-import`` actors run these functions through their entry points
(``pipeline.stages.entry_points``). One company's import is one claim, one streamed fetch, one staged merge
and one fetch record; its failure is recorded on its own fetch row and never touches another company's
import.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import ColumnElement, Engine, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline import metrics
from pipeline.db.claims import lease_for
from pipeline.db.enums import CompanyStatus, CsvFetchOutcome, CsvRowProblem
from pipeline.db.models import Company, CsvFetch, CsvRowError
from pipeline.db.types import utcnow
from pipeline.errors import PermanentError, PipelineError, TransientError, is_transient
from pipeline.settings import Settings
from pipeline.sources.csv_content import checked_csv_body
from pipeline.sources.csv_format import parse_session_rows
from pipeline.sources.http_fetch import Fetcher, FetchError, FetchLimits
from pipeline.stages.company_egress import company_credentials
from pipeline.stages.csv_claims import ImportCapacityReached, claim_company_import, previous_fetch
from pipeline.stages.csv_store import StoreResult, iter_fetch_import_ids, store_rows

__all__ = [
    "CsvImportFailed",
    "CsvImportResult",
    "ImportCapacityReached",
    "PermanentCsvImportFailure",
    "TransientCsvImportFailure",
    "due_company_ids",
    "fetch_limits",
    "import_company_csv",
]

logger = logging.getLogger(__name__)


class CsvImportFailed(PipelineError):
    """One company's import failed; the failure is recorded on its fetch row first."""

    def __init__(self, company_id: uuid.UUID, reason: str) -> None:
        super().__init__(f"company {company_id}: {reason}")
        self.company_id = company_id
        self.reason = reason


class TransientCsvImportFailure(CsvImportFailed, TransientError):
    """The fetch failed in a way a later try may not (timeouts, 5xx), or the import broke unexpectedly."""


class PermanentCsvImportFailure(CsvImportFailed, PermanentError):
    """Retrying cannot help: a refused request (401, 404), a body that is no CSV, an unreadable password."""


@dataclass(frozen=True)
class CsvImportResult:
    """How one company import ended; ``outcome`` is ``None`` when another import of it was running."""

    company_id: uuid.UUID
    fetch_id: uuid.UUID | None
    outcome: CsvFetchOutcome | None
    rows_new: int = 0
    rows_changed: int = 0
    rows_duplicate: int = 0
    rows_invalid: int = 0
    handed_over: int = 0


def fetch_limits(settings: Settings) -> FetchLimits:
    return FetchLimits(
        total_timeout=settings.csv_import_timeout / 1000,
        max_bytes=settings.csv_import_max_bytes,
        allow_private=settings.csv_allow_private_networks,
    )


def _region_filter(settings: Settings) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if settings.region:
        conditions.append(Company.region == settings.region)
    chosen = settings.csv_companies_filter
    if chosen is not None and chosen.region is not None:
        conditions.append(Company.region == chosen.region)
    elif chosen is not None:
        conditions.append(Company.id.in_(chosen.ids))
    return conditions


def due_company_ids(db: Session, settings: Settings) -> Iterator[uuid.UUID]:
    """Every ACTIVE company with a CSV URL that this deployment imports, a page at a time."""
    after: uuid.UUID | None = None
    while True:
        statement = (
            select(Company.id)
            .where(Company.status == CompanyStatus.ACTIVE, Company.csv_url != "", *_region_filter(settings))
            .order_by(Company.id)
            .limit(settings.csv_import_batch_size)
        )
        if after is not None:
            statement = statement.where(Company.id > after)
        page = db.scalars(statement).all()
        yield from page
        if len(page) < settings.csv_import_batch_size:
            return
        after = page[-1]


def _finish(factory: sessionmaker[Session], fetch_id: uuid.UUID, **values: object) -> None:
    with factory.begin() as db:
        db.execute(update(CsvFetch).where(CsvFetch.id == fetch_id).values(finished_at=utcnow(), **values))


def _store_problems(
    factory: sessionmaker[Session], company_id: uuid.UUID, fetch_id: uuid.UUID, result: StoreResult
) -> None:
    """Store the fetch's row errors and field warnings (as many as :class:`StoreResult` kept)."""
    if not (result.errors or result.warnings):
        return
    now = utcnow()
    common = {"fetch_id": fetch_id, "company_id": company_id, "created_at": now}
    errors = [
        {
            "id": uuid.uuid4(),
            "kind": CsvRowProblem.ERROR,
            "line_number": error.line_number,
            "column_name": None,
            "reason": error.reason,
            "raw_excerpt": error.raw_excerpt or None,
            **common,
        }
        for error in result.errors
    ]
    warnings = [
        {
            "id": uuid.uuid4(),
            "kind": CsvRowProblem.WARNING,
            "line_number": warning.line_number,
            "column_name": warning.column,
            "reason": warning.reason,
            "raw_excerpt": warning.value_excerpt or None,
            **common,
        }
        for warning in result.warnings
    ]
    with factory.begin() as db:
        db.execute(insert(CsvRowError), errors + warnings)


def _fail(
    factory: sessionmaker[Session],
    company_id: uuid.UUID,
    fetch_id: uuid.UUID,
    reason: str,
    *,
    kind: type[CsvImportFailed],
    **values: object,
) -> NoReturn:
    _finish(factory, fetch_id, outcome=CsvFetchOutcome.FAILED, error=reason, **values)
    metrics.CSV_FETCHES.labels("failed").inc()
    raise kind(company_id, reason)


def _record_imported(
    factory: sessionmaker[Session],
    fetch_id: uuid.UUID,
    result: StoreResult,
    started: float,
    common: dict[str, Any],
) -> None:
    _finish(
        factory,
        fetch_id,
        outcome=CsvFetchOutcome.IMPORTED,
        rows_total=result.rows_total,
        rows_new=result.rows_new,
        rows_changed=result.rows_changed,
        rows_duplicate=result.rows_duplicate,
        rows_invalid=result.rows_invalid,
        field_warnings=result.field_warnings,
        **common,
    )
    metrics.CSV_FETCHES.labels("imported").inc()
    for name in ("new", "changed", "duplicate", "invalid"):
        metrics.CSV_ROWS.labels(name).inc(getattr(result, f"rows_{name}"))
    metrics.CSV_FETCH_DURATION.observe(time.monotonic() - started)


def _hand_over(
    engine: Engine, fetch_id: uuid.UUID, chunk_size: int, hand_over: Callable[[list[uuid.UUID]], None]
) -> int:
    """Hand the fetch's new and changed imports to the next stage in chunks; how many were handed over."""
    handed_over = 0
    with engine.connect() as connection:
        for chunk in iter_fetch_import_ids(connection, fetch_id, chunk_size):
            hand_over(chunk)
            handed_over += len(chunk)
    return handed_over


def import_company_csv(
    engine: Engine,
    settings: Settings,
    company_id: uuid.UUID,
    *,
    fetcher: Fetcher,
    hand_over: Callable[[list[uuid.UUID]], None],
) -> CsvImportResult:
    """Fetch, parse and store one company's CSV, then hand its new and changed imports to the next stage.

    Raises :class:`ImportCapacityReached` when the pool is at its cap (retry later), and
    :class:`CsvImportFailed` when the fetch or the file failed (recorded on the fetch row first).
    """
    factory = sessionmaker(engine, expire_on_commit=False)
    started = time.monotonic()
    with factory.begin() as db:
        company = db.get(Company, company_id)
        if company is None or company.status is not CompanyStatus.ACTIVE or not company.csv_url:
            logger.info("company %s is gone, inactive or has no CSV URL: nothing to import", company_id)
            return CsvImportResult(company_id, None, None)
        lease = lease_for(settings.csv_import_timeout, settings.claim_lease_grace)
        fetch_id = claim_company_import(
            db, company_id, max_concurrent=settings.csv_import_max_concurrent, lease=lease, now=utcnow()
        )
        if fetch_id is None:
            metrics.CSV_FETCHES.labels("skipped_running").inc()
            return CsvImportResult(company_id, None, None)
        previous = previous_fetch(db, company_id)

    try:
        credentials = company_credentials(settings, company)
    except (RuntimeError, ValueError) as exc:
        _fail(factory, company_id, fetch_id, str(exc), kind=PermanentCsvImportFailure)

    try:
        with fetcher.stream(
            company.csv_url,
            credentials=credentials,
            allow_private=company.allow_private_networks,
            etag=previous.etag,
            last_modified=previous.last_modified,
        ) as response:
            if response.not_modified:
                _finish(
                    factory,
                    fetch_id,
                    outcome=CsvFetchOutcome.UNCHANGED,
                    http_status=response.status_code,
                    etag=previous.etag,
                    last_modified=previous.last_modified,
                    content_hash=previous.content_hash,
                )
                metrics.CSV_FETCHES.labels("unchanged").inc()
                return CsvImportResult(company_id, fetch_id, CsvFetchOutcome.UNCHANGED)
            with engine.connect() as connection:
                transaction = connection.begin()
                body = checked_csv_body(
                    response.content_type, response.iter_bytes(), status_code=response.status_code
                )
                result = store_rows(
                    connection,
                    parse_session_rows(body, max_record_bytes=settings.csv_max_record_bytes),
                    company_id=company_id,
                    fetch_id=fetch_id,
                    now=utcnow(),
                )
                unchanged = response.sha256 == previous.content_hash
                if unchanged:
                    transaction.rollback()
                else:
                    transaction.commit()
    except FetchError as exc:
        _fail(
            factory,
            company_id,
            fetch_id,
            exc.reason,
            kind=TransientCsvImportFailure if is_transient(exc) else PermanentCsvImportFailure,
            http_status=exc.status_code,
        )
    except Exception as exc:
        logger.exception("import of company %s failed unexpectedly", company_id)
        reason = f"internal error: {type(exc).__name__}: {exc}"
        _fail(factory, company_id, fetch_id, reason, kind=TransientCsvImportFailure)

    metrics.CSV_FETCH_BYTES.observe(response.bytes_read)
    common: dict[str, Any] = {
        "http_status": response.status_code,
        "bytes_read": response.bytes_read,
        "content_hash": response.sha256,
        "etag": response.etag,
        "last_modified": response.last_modified,
    }
    if unchanged:
        _finish(factory, fetch_id, outcome=CsvFetchOutcome.UNCHANGED, **common)
        metrics.CSV_FETCHES.labels("unchanged").inc()
        return CsvImportResult(company_id, fetch_id, CsvFetchOutcome.UNCHANGED)

    _store_problems(factory, company_id, fetch_id, result)
    if result.rows_total and result.rows_invalid == result.rows_total:
        first = result.errors[0]
        _fail(
            factory,
            company_id,
            fetch_id,
            f"unparseable CSV: none of its {result.rows_total} rows is valid "
            f"(line {first.line_number}: {first.reason})",
            kind=PermanentCsvImportFailure,
            **common,
        )
    _record_imported(factory, fetch_id, result, started, common)
    handed_over = _hand_over(engine, fetch_id, settings.import_processing_batch_size, hand_over)
    return CsvImportResult(
        company_id,
        fetch_id,
        CsvFetchOutcome.IMPORTED,
        result.rows_new,
        result.rows_changed,
        result.rows_duplicate,
        result.rows_invalid,
        handed_over,
    )
