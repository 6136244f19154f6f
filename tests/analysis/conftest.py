"""A database session on SQLite and on PostgreSQL, for the lookups of prices and models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session


@pytest.fixture(params=["sqlite_engine", pytest.param("pg_engine", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Iterator[Session]:
    """A session that is never committed: PostgreSQL keeps the seeded prices between tests, so a test's own
    price and model changes must vanish with its session."""
    engine: Engine = request.getfixturevalue(request.param)
    with Session(engine) as session:
        yield session
