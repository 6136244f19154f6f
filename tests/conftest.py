"""Fixtures shared by the whole suite: settings, databases (SQLite and PostgreSQL) and brokers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pipeline.db import migrate
from pipeline.db.engine import create_db_engine
from pipeline.db.models import Base
from pipeline.settings import Settings, load_settings
from tests.demo_source import Source, running_source
from tests.services import scratch_postgres_database
from tests.sqlite_template import migrated_sqlite_engine

#: Tables filled by the migrations themselves (seed data); kept between tests.
SEEDED_TABLES = {"ai_model", "ai_model_pricing"}


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One migrated PostgreSQL database for the test session."""
    with scratch_postgres_database() as url:
        engine = create_db_engine(load_settings(database_url=url))
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture
def pg_settings(postgres_url: str) -> Settings:
    return load_settings(database_url=postgres_url, secret_key="test-secret", csv_allow_private_networks=True)


@pytest.fixture
def pg_engine(pg_settings: Settings) -> Iterator[Engine]:
    """The session database, emptied of everything but seed data before each test.

    ``DELETE`` rather than ``TRUNCATE``: the tables hold a few rows between tests, and a truncation of
    seventeen tables (new files for each, and their indexes) cost four times as much, before every one of
    some 900 tests.
    """
    engine = create_db_engine(pg_settings)
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in SEEDED_TABLES:
                connection.execute(table.delete())
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return load_settings(
        database_url=f"sqlite:///{tmp_path / 'livedash.sqlite3'}",
        secret_key="test-secret",
        csv_allow_private_networks=True,
        broker="memory",
    )


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once for the test session, copied by each test that needs one: running
    the migrations took about half a second per test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "livedash.sqlite3"
    engine = create_db_engine(load_settings(database_url=f"sqlite:///{path}", broker="memory"))
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_engine(sqlite_settings: Settings, migrated_sqlite_file: Path) -> Iterator[Engine]:
    engine = migrated_sqlite_engine(sqlite_settings, migrated_sqlite_file)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_db(pg_engine: Engine) -> Iterator[Session]:
    with sessionmaker(pg_engine, expire_on_commit=False)() as db:
        yield db


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Source]:
    """Two companies of 30 sessions each, served over HTTP on 127.0.0.1 with Basic auth."""
    with running_source(tmp_path / "source") as running:
        yield running
