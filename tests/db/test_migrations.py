"""The Alembic migrations: they build the schema the models describe, on PostgreSQL and on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from pipeline.db import migrate
from pipeline.db.models import Base
from tests.services import scratch_postgres_database


def _schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


@pytest.fixture
def empty_postgres() -> Iterator[Engine]:
    with scratch_postgres_database("livedash_migrations") as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.mark.postgres
def test_upgrade_from_empty_then_downgrade_to_empty_on_postgres(empty_postgres: Engine) -> None:
    # Given an empty PostgreSQL database
    # When every migration is applied
    migrate.upgrade(empty_postgres)

    # Then every table of the model exists, at the newest revision
    tables = set(inspect(empty_postgres).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert migrate.current_revision(empty_postgres) == migrate.head_revision(empty_postgres)

    # When they are all rolled back
    migrate.downgrade(empty_postgres, "base")

    # Then nothing is left behind but Alembic's bookkeeping, not even a type
    assert set(inspect(empty_postgres).get_table_names()) <= {"alembic_version"}
    with empty_postgres.connect() as connection:
        types = connection.execute(
            text(
                "SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = 'public' AND t.typtype = 'e'"
            )
        ).all()
    assert types == []

    # And the schema can be built again from there
    migrate.upgrade(empty_postgres)
    assert _schema_diff(empty_postgres) == []


@pytest.mark.postgres
def test_models_and_migrations_agree_on_postgres(empty_postgres: Engine) -> None:
    # Given a database built by the migrations
    migrate.upgrade(empty_postgres)

    # When autogenerate compares it with the models
    # Then it finds nothing to change
    assert _schema_diff(empty_postgres) == []


def test_the_same_migrations_run_on_sqlite(tmp_path: Path) -> None:
    # Given an empty SQLite file (the embedded default)
    engine = create_engine(f"sqlite:///{tmp_path / 'embedded.sqlite3'}")

    # When every migration is applied
    migrate.upgrade(engine)

    # Then the schema matches the models
    assert _schema_diff(engine) == []
    # And it rolls back cleanly too
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_the_migrations_seed_models_and_prices(sqlite_engine: Engine) -> None:
    # Given a migrated database
    with sqlite_engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT m.name, p.prompt_token_cost, p.completion_token_cost FROM ai_model m "
                "JOIN ai_model_pricing p ON p.ai_model_id = m.id ORDER BY m.name"
            )
        ).all()

    # Then the models of docs/session-analysis.md are there with their USD-per-token prices
    assert [tuple(row) for row in rows] == [
        ("gpt-4-turbo", 0.00001, 0.00003),
        ("gpt-4o", 0.0000025, 0.00001),
        ("gpt-4o-2024-08-06", 0.0000025, 0.00001),
        ("gpt-4o-mini", 0.00000015, 0.0000006),
    ]
