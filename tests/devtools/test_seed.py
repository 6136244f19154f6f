"""``livedash devtools seed``: a database in every state the pipeline meets, written with COPY."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from pipeline.devtools.seed import SeedPlan, SessionState, default_now, seed_database, session_state

pytestmark = pytest.mark.postgres

#: Each state the pipeline meets, as a query counting the rows in it.
STATES = {
    "imported, not derived": "SELECT count(*) FROM session_import WHERE derive_status = 'PENDING'",
    "derivation leased by a live worker": "SELECT count(*) FROM session_import "
    "WHERE derive_status = 'IN_PROGRESS' AND derive_lease_expires_at > now()",
    "derivation leased by a dead worker": "SELECT count(*) FROM session_import "
    "WHERE derive_status = 'IN_PROGRESS' AND derive_lease_expires_at < now()",
    "derivation failed, retry due": "SELECT count(*) FROM session_import "
    "WHERE derive_status = 'FAILED' AND derive_next_attempt_at <= now()",
    "derivation failed, retry not due": "SELECT count(*) FROM session_import "
    "WHERE derive_status = 'FAILED' AND derive_next_attempt_at > now()",
    "derived, waiting for AI": "SELECT count(*) FROM session_processing_status s WHERE stage = 'AI_ANALYSIS' "
    "AND status = 'PENDING' "
    "AND NOT EXISTS (SELECT FROM ai_processing_request r WHERE r.session_id = s.session_id)",
    "being analysed": "SELECT count(*) FROM session_processing_status "
    "WHERE stage = 'AI_ANALYSIS' AND status = 'IN_PROGRESS'",
    "waiting for a batch": "SELECT count(*) FROM ai_processing_request "
    "WHERE processing_status = 'PENDING_BATCHING' AND batch_id IS NULL",
    "in an open batch": "SELECT count(*) FROM ai_processing_request r "
    "JOIN ai_batch_request b ON b.id = r.batch_id "
    "WHERE r.processing_status = 'BATCHING_IN_PROGRESS' AND b.status IN ('VALIDATING', 'IN_PROGRESS', "
    "'FINALIZING', 'COMPLETED')",
    "analysed": "SELECT count(*) FROM session WHERE sentiment IS NOT NULL",
    "AI failed, retry due": "SELECT count(*) FROM session_processing_status "
    "WHERE stage = 'AI_ANALYSIS' AND status = 'FAILED' AND next_attempt_at <= now()",
    "AI failed, retry not due": "SELECT count(*) FROM session_processing_status "
    "WHERE stage = 'AI_ANALYSIS' AND status = 'FAILED' AND next_attempt_at > now()",
    "AI failed for good": "SELECT count(*) FROM session_processing_status "
    "WHERE stage = 'AI_ANALYSIS' AND status = 'FAILED' AND next_attempt_at IS NULL",
    "dead AI request": "SELECT count(*) FROM ai_processing_request "
    "WHERE processing_status = 'PROCESSING_FAILED'",
    "batch processed": "SELECT count(*) FROM ai_batch_request WHERE status = 'PROCESSED'",
    "batch failed": "SELECT count(*) FROM ai_batch_request WHERE status = 'FAILED'",
    "scheduler runs, failed too": "SELECT count(*) FROM scheduler_run WHERE status = 'FAILED'",
    "fetch history, failed too": "SELECT count(*) FROM csv_fetch WHERE outcome = 'FAILED'",
    "row errors": "SELECT count(*) FROM csv_row_error",
    "messages": "SELECT count(*) FROM message",
}


def test_a_seeded_database_holds_every_state_and_the_rows_reported(pg_engine: Engine) -> None:
    # Given a migrated, empty database
    indexes = _indexes(pg_engine)
    # When it is seeded with 5 companies and 4,000 sessions
    report = seed_database(pg_engine, SeedPlan(companies=5, sessions=4_000, now=default_now()))

    # Then every state the pipeline meets has rows, and each table holds what the report says
    with pg_engine.connect() as connection:
        empty = [state for state, query in STATES.items() if not connection.execute(text(query)).scalar()]
        stored = {
            table: connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar()
            for table in report.rows
        }
    assert empty == []
    assert stored == report.rows
    assert report.rows["session_import"] == 4_000
    assert report.rows["company"] == 5
    # And the indexes dropped for the load are all back
    assert _indexes(pg_engine) == indexes


def _indexes(engine: Engine) -> set[tuple[str, ...]]:
    """Each index with its table, columns, uniqueness and whether it is partial (PostgreSQL words a rebuilt
    predicate differently, so its text is not compared)."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT c.relname, t.relname, i.indisunique, i.indpred IS NOT NULL, i.indkey::text "
                "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_class t ON t.oid = i.indrelid "
                "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'"
            )
        )
        return {tuple(str(value) for value in row) for row in rows}


def test_seeding_refuses_a_database_that_holds_companies(pg_engine: Engine) -> None:
    # Given a seeded database
    plan = SeedPlan(companies=2, sessions=100, now=default_now())
    seed_database(pg_engine, plan)

    # When it is seeded again, then it is refused and nothing is added
    with pytest.raises(ValueError, match="already holds companies"):
        seed_database(pg_engine, plan)
    with pg_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM session_import")).scalar() == 100


def test_the_newest_sessions_hold_the_work_in_flight() -> None:
    states = [session_state(index, 10_000) for index in range(10_000)]
    # The older 95% is history: analysed, or failed for good
    history = set(states[:9_500])
    assert history <= {SessionState.ANALYSED, SessionState.AI_FAILED_FOR_GOOD, SessionState.TRANSCRIPT_FAILED}
    # The newest 5% holds every state
    assert set(states[9_500:]) == set(SessionState) - {SessionState.AI_FAILED_FOR_GOOD}
