"""A worker process of the budget race (tests/stages/test_budgets.py): a small module, quick to import."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from pipeline.stages.budgets import month_of, reserve


def reserve_in_a_process(database_url: str, company_id: uuid.UUID, start_at: float) -> int:
    """Its own engine, reserving 1.10 EUR of a 7.70 EUR budget five times from ``start_at`` on."""
    engine = create_engine(database_url)
    try:
        time.sleep(max(0.0, start_at - time.time()))
        taken = 0
        for _ in range(5):
            with sessionmaker(engine).begin() as db:
                month = month_of(datetime.now(UTC))
                taken += reserve(db, company_id, month, [Decimal("1.10")], Decimal("7.70"))
        return taken
    finally:
        engine.dispose()
