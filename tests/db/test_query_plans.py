"""The plans of the hot queries on a seeded database: none reads a growing table from end to end.

Every periodic and operator read is run for real against a small seeded database (``livedash devtools
seed``) inside a transaction that is rolled back, every statement it sends is captured, and each is then
``EXPLAIN``-ed in that same transaction with ``SET LOCAL enable_seqscan = off``.

Why that setting: on a database small enough for CI, a sequential scan is often the planner's honest best
choice even where an index exists (reading 30 pages beats an index walk), so a plain ``EXPLAIN`` would fail
good queries. With sequential scans priced out, the planner still falls back to one when *no index can serve
the query at all*, which is exactly the mistake that makes a query grow with the history (a missing partial
index, a predicate no index matches). Priced out, the planner may instead walk a whole index, which grows
just the same: so a scan of a growing table's index with no index condition fails too, unless the index is
partial (it holds only the work, not the history) or a ``LIMIT`` above it stops the walk early (newest first).

The large-table paths of the counts (estimates from the planner's statistics) are what production runs at
scale, so the tests lower ``EXACT_COUNT_ROWS`` to take them on the small database too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import openai
import pytest
from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.orm import Session

from pipeline.cli.batches import newest_batches
from pipeline.cli.paging import parse_before
from pipeline.db import estimates, migrate
from pipeline.db.claims import IMPORT_DERIVATION, claim
from pipeline.db.engine import normalize_database_url
from pipeline.db.enums import ProcessingStage, ProcessingStatus
from pipeline.db.models import SessionImport, SessionProcessingStatus
from pipeline.devtools.seed import SeedPlan, default_now, seed_database
from pipeline.scheduling.overview import scheduler_overviews
from pipeline.settings import Settings, load_settings
from pipeline.stages.analysis_claims import claim_analysable
from pipeline.stages.batch_check import check_batches
from pipeline.stages.batch_enqueue import enqueue_for_batch
from pipeline.stages.batch_submit import plan_batches
from pipeline.stages.csv_reports import company_import_status, recent_row_errors
from pipeline.stages.import_sweep import sweep_imports
from pipeline.stages.pipeline_reports import failed_sessions, pipeline_status
from pipeline.stages.session_sweep import sweep_sessions
from tests.services import scratch_postgres_database

pytestmark = pytest.mark.postgres

#: Tables that grow with the history: no hot query may read one of them sequentially.
GROWING = {
    "session", "session_import", "message", "session_processing_status", "session_question",
    "ai_processing_request", "ai_batch_request", "scheduler_run", "scheduler_tick", "csv_fetch",
    "csv_row_error",
}  # fmt: skip
_INDEX_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}


@pytest.fixture(scope="module")
def seeded_engine() -> Iterator[Engine]:
    with scratch_postgres_database("livedash_plans") as url:
        engine = create_engine(normalize_database_url(url), execution_options={"preserve_rowcount": True})
        migrate.upgrade(engine)
        seed_database(engine, SeedPlan(companies=40, sessions=4_000, now=default_now()))
        yield engine
        engine.dispose()


@pytest.fixture
def settings(seeded_engine: Engine) -> Settings:
    return load_settings(
        database_url=seeded_engine.url.render_as_string(hide_password=False),
        secret_key="test-secret",
        broker="memory",
    )


class _StillRunning:
    """An OpenAI client for which every batch is still in progress."""

    def __init__(self) -> None:
        remote = SimpleNamespace(
            status="in_progress", output_file_id=None, error_file_id=None, completed_at=None,
            failed_at=None, expired_at=None, cancelled_at=None,
        )  # fmt: skip
        self.batches = SimpleNamespace(retrieve=lambda _id: remote, cancel=lambda _id: remote)


def _waiting_for_ai(db: Session) -> list[Any]:
    return list(
        db.scalars(
            select(SessionProcessingStatus.session_id)
            .where(
                SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
                SessionProcessingStatus.status == ProcessingStatus.PENDING,
                SessionProcessingStatus.attempts == 0,
            )
            .limit(50)
        )
    )


def _claim_imports(engine: Engine, _settings: Settings) -> None:
    with Session(engine) as db:
        due = db.scalars(
            select(SessionImport.id).where(SessionImport.derive_status == ProcessingStatus.PENDING).limit(50)
        ).all()
        claim(
            db,
            IMPORT_DERIVATION,
            limit=50,
            lease=timedelta(minutes=5),
            owner="t",
            where=[SessionImport.id.in_(due)],
        )


def _claim_analysis(engine: Engine, settings: Settings) -> None:
    with Session(engine) as db:
        claim_analysable(db, settings, _waiting_for_ai(db), now=default_now(), lease=timedelta(minutes=5))


def _enqueue(engine: Engine, settings: Settings) -> None:
    with Session(engine) as db:
        waiting = _waiting_for_ai(db)
    enqueue_for_batch(engine, settings, waiting)


def _reading(function: Callable[[Session], object]) -> Callable[[Engine, Settings], None]:
    def run(engine: Engine, _settings: Settings) -> None:
        with Session(engine) as db:
            function(db)

    return run


def _next_page(db: Session, listing: Callable[..., list[dict[str, Any]]]) -> list[dict[str, Any]]:
    first = listing(db, limit=20)
    return listing(db, limit=20, before=parse_before(first[-1]["cursor"]))


HOT_QUERIES: dict[str, Callable[[Engine, Settings], object]] = {
    "import sweep": lambda engine, settings: sweep_imports(engine, settings, lambda _ids: None),
    "session sweep": lambda engine, settings: sweep_sessions(engine, settings, lambda _ids: None),
    "import derivation claim": _claim_imports,
    "analysis claim": _claim_analysis,
    "batch planning": plan_batches,
    "batch check": lambda engine, settings: check_batches(
        engine, settings, cast(openai.OpenAI, _StillRunning())
    ),
    "session-processing chunk (Batch mode)": _enqueue,
    "scheduler overview (health, schedulers list)": scheduler_overviews,
    "status": _reading(lambda db: (company_import_status(db), pipeline_status(db))),
    "imports errors": _reading(lambda db: recent_row_errors(db, limit=50)),
    "sessions failed": _reading(lambda db: failed_sessions(db, limit=100)),
    "batches list": _reading(lambda db: newest_batches(db, limit=50)),
    "imports errors, next page": _reading(lambda db: _next_page(db, recent_row_errors)),
    "sessions failed, next page": _reading(lambda db: _next_page(db, failed_sessions)),
    "batches list, next page": _reading(lambda db: _next_page(db, newest_batches)),
}


def _full_reads(
    plan: dict[str, Any], growing_indexes: dict[str, str], limited: bool = False
) -> Iterator[str]:
    """What ``plan`` reads of a growing table from end to end: ``table`` or ``table.index``."""
    node = plan.get("Node Type")
    limited = limited or node == "Limit"
    if node == "Seq Scan" and plan["Relation Name"] in GROWING:
        yield plan["Relation Name"]
    index = plan.get("Index Name")
    if node in _INDEX_SCANS and index in growing_indexes and "Index Cond" not in plan and not limited:
        yield f"{growing_indexes[index]}.{index}"
    for child in plan.get("Plans", ()):
        yield from _full_reads(child, growing_indexes, limited)


def _whole_indexes(connection: Connection) -> dict[str, str]:
    """The indexes of the growing tables that are not partial, by name, with their table."""
    rows = connection.exec_driver_sql(
        "SELECT indexname, tablename FROM pg_indexes WHERE schemaname = current_schema() "
        "AND indexdef NOT LIKE '%% WHERE %%'"
    )
    return {index: table for index, table in rows if table in GROWING}


def _statements_of(
    connection: Connection, run: Callable[[Engine, Settings], object], settings: Settings
) -> list[tuple[str, Any]]:
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT", "WITH")):
            captured.append((statement, parameters[0] if many else parameters))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        # The stages open sessions on what they are given: a connection in a transaction serves as well,
        # and everything they write is rolled back with it.
        run(cast(Engine, connection), settings)
    finally:
        event.remove(connection, "before_cursor_execute", capture)
    return captured


@pytest.mark.parametrize("name", list(HOT_QUERIES))
def test_hot_query_reads_no_growing_table_sequentially(
    name: str, seeded_engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a seeded database in every pipeline state, and counts taking their large-table path
    monkeypatch.setattr(estimates, "EXACT_COUNT_ROWS", 0)
    with seeded_engine.connect() as connection:
        transaction = connection.begin()
        # When the query runs and each statement it sent is explained, sequential scans priced out
        statements = _statements_of(connection, HOT_QUERIES[name], settings)
        whole_indexes = _whole_indexes(connection)
        driver: Any = connection.connection.driver_connection
        scans = []
        with driver.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            for statement, parameters in statements:
                cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
                plan = cursor.fetchone()[0]
                plan = plan if isinstance(plan, list) else json.loads(plan)
                scans += [(read, statement) for read in _full_reads(plan[0]["Plan"], whole_indexes)]
        transaction.rollback()

    # Then it sent statements, and none of them reads a growing table (or a whole index of one) end to end
    assert statements, f"{name} sent no statement"
    assert scans == [], f"{name}: full reads {scans}"
