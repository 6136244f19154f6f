"""Settings for the health tests: a SQLite database, an admin token, the default source timeout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pipeline.settings import Settings, load_settings
from tests.health.fakes import FakeSources
from tests.sqlite_template import migrated_sqlite_engine

TOKEN = "test-admin-token"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        database_url=f"sqlite:///{tmp_path / 'health.sqlite3'}",
        broker="memory",
        admin_api_token=TOKEN,
        # The default deadline (3 s): a real read (SQLite here) can take over 300 ms on a loaded machine,
        # which made a never-run scheduler ERROR ("database unreachable"). Deadline tests set their own.
        health_source_timeout_ms=3_000,
        health_metrics_targets="",
        prometheus_url=None,
        scheduler_enabled=True,
        # Each request evaluates afresh, so a test sees the sources it just changed (tests of the cache
        # set their own).
        health_cache_ms=0,
    )


@pytest.fixture
def engine(settings: Settings, migrated_sqlite_file: Path) -> Iterator[Engine]:
    """The health tests' SQLite database, migrated."""
    engine = migrated_sqlite_engine(settings, migrated_sqlite_file)
    yield engine
    engine.dispose()


@pytest.fixture
def sources(settings: Settings) -> FakeSources:
    return FakeSources(settings)
