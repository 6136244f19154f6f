"""The claim helper: every stage takes its work through it, so it must never hand one item out twice."""

from __future__ import annotations

import multiprocessing
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db.claims import STAGE_STATUS, claim
from pipeline.db.enums import ProcessingStage, ProcessingStatus
from pipeline.db.models import SessionProcessingStatus
from pipeline.db.types import utcnow
from tests.factories import make_company, make_session_with_stages

AI = SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS
LEASE = timedelta(minutes=5)


def _stage_rows(db: Session) -> list[SessionProcessingStatus]:
    return list(db.scalars(select(SessionProcessingStatus).where(AI)))


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    fixture = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


def test_a_claim_takes_pending_items_and_leases_them(engine: Engine) -> None:
    # Given three sessions whose AI analysis is pending
    with sessionmaker(engine).begin() as db:
        company = make_company(db)
        for _ in range(3):
            make_session_with_stages(db, company)

    # When a worker claims two
    with sessionmaker(engine).begin() as db:
        claimed = claim(db, STAGE_STATUS, limit=2, lease=LEASE, owner="worker-a", where=[AI])

    # Then exactly two are in progress, leased to it, with one attempt each
    with sessionmaker(engine)() as db:
        rows = {row.id: row for row in _stage_rows(db)}
    assert len(claimed) == 2
    for item in claimed:
        assert rows[item].status is ProcessingStatus.IN_PROGRESS
        assert rows[item].leased_by == "worker-a"
        assert rows[item].attempts == 1
        expires = rows[item].lease_expires_at
        assert expires is not None and expires > utcnow()
    # And the third is still pending for the next claimer
    with sessionmaker(engine).begin() as db:
        assert len(claim(db, STAGE_STATUS, limit=10, lease=LEASE, owner="worker-b", where=[AI])) == 1
        assert claim(db, STAGE_STATUS, limit=10, lease=LEASE, owner="worker-c", where=[AI]) == []


def test_an_expired_lease_is_claimable_again_and_a_live_one_is_not(engine: Engine) -> None:
    # Given one item claimed by a worker that then died
    with sessionmaker(engine).begin() as db:
        make_session_with_stages(db, make_company(db))
    with sessionmaker(engine).begin() as db:
        [item] = claim(db, STAGE_STATUS, limit=1, lease=LEASE, owner="dead-worker", where=[AI])

    # When another worker tries while the lease is live
    with sessionmaker(engine).begin() as db:
        assert claim(db, STAGE_STATUS, limit=1, lease=LEASE, owner="worker-b", where=[AI]) == []

    # And again after the lease ran out
    later = utcnow() + LEASE + timedelta(seconds=1)
    with sessionmaker(engine).begin() as db:
        reclaimed = claim(db, STAGE_STATUS, limit=1, lease=LEASE, owner="worker-b", where=[AI], now=later)

    # Then it takes the item over, and the attempt is counted
    assert reclaimed == [item]
    with sessionmaker(engine)() as db:
        row = db.get(SessionProcessingStatus, item)
        assert row is not None and row.leased_by == "worker-b" and row.attempts == 2


def test_finished_items_are_never_claimed(engine: Engine) -> None:
    # Given items that are completed, failed and skipped
    with sessionmaker(engine).begin() as db:
        company = make_company(db)
        for status in (ProcessingStatus.COMPLETED, ProcessingStatus.FAILED, ProcessingStatus.SKIPPED):
            make_session_with_stages(db, company, status=status)

    # When a worker claims
    with sessionmaker(engine).begin() as db:
        claimed = claim(db, STAGE_STATUS, limit=10, lease=LEASE, owner="worker", where=[AI])

    # Then it gets nothing
    assert claimed == []


def _claim_until_empty(url: str, owner: str, start: Any, out: multiprocessing.Queue[list[str]]) -> None:
    engine = create_engine(url, pool_size=1)
    taken: list[str] = []
    start.wait()
    while True:
        with sessionmaker(engine).begin() as db:
            batch = claim(db, STAGE_STATUS, limit=7, lease=LEASE, owner=owner, where=[AI])
            # Hold the row locks a moment, so that the other claimers must skip them rather than wait.
            db.execute(text("SELECT pg_sleep(0.01)"))
        if not batch:
            break
        taken.extend(str(item) for item in batch)
    engine.dispose()
    out.put(taken)


@pytest.mark.postgres
def test_concurrent_claimers_in_several_processes_never_take_an_item_twice(
    pg_engine: Engine, postgres_url: str
) -> None:
    # Given 400 pending items on PostgreSQL
    with sessionmaker(pg_engine).begin() as db:
        company = make_company(db)
        for _ in range(400):
            make_session_with_stages(db, company)
    with sessionmaker(pg_engine)() as db:
        expected = {str(row.id) for row in _stage_rows(db)}

    # When four processes claim batches of seven as fast as they can until nothing is left
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[list[str]] = context.Queue()
    start = context.Barrier(4)
    workers = [
        context.Process(target=_claim_until_empty, args=(postgres_url, f"proc-{n}", start, results))
        for n in range(4)
    ]
    for worker in workers:
        worker.start()
    taken = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)

    # Then every item was taken exactly once
    flat = [item for batch in taken for item in batch]
    assert len(flat) == len(set(flat)), "an item was claimed by two workers"
    assert set(flat) == expected
    # And the work was really shared (SKIP LOCKED, not one process doing everything)
    assert sum(1 for batch in taken if batch) >= 2
    assert all(uuid.UUID(item) for item in flat)


def test_overdue_is_claimable_and_past_the_grace_when_pending(sqlite_engine: Engine) -> None:
    # Given one pending item and one claimed by a worker
    with sessionmaker(sqlite_engine).begin() as db:
        company = make_company(db)
        make_session_with_stages(db, company)
        make_session_with_stages(db, company)
    with sessionmaker(sqlite_engine).begin() as db:
        [leased] = claim(db, STAGE_STATUS, limit=1, lease=LEASE, owner="worker-a", where=[AI])
    grace = timedelta(minutes=2)

    def overdue(now_offset: timedelta) -> set[uuid.UUID]:
        now = utcnow() + now_offset
        with sessionmaker(sqlite_engine)() as db:
            rows = db.scalars(
                select(SessionProcessingStatus.id).where(
                    AI,
                    STAGE_STATUS.overdue(now, waiting_since=SessionProcessingStatus.updated_at, grace=grace),
                )
            )
            return set(rows)

    # When the sweep looks at once: the pending one's message is presumed on the way, the lease is live
    assert overdue(timedelta(0)) == set()
    # When it looks after the grace: the pending one is overdue, the leased one still is not
    after_grace = overdue(grace + timedelta(seconds=1))
    assert leased not in after_grace and len(after_grace) == 1
    # When it looks after the lease: both are
    assert len(overdue(LEASE + timedelta(seconds=1))) == 2
