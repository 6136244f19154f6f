"""Engines and sessions: PostgreSQL in production, a local SQLite file for the embedded mode."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from pipeline.settings import Settings, get_settings

__all__ = ["create_db_engine", "get_engine", "get_session_factory", "normalize_database_url"]


def normalize_database_url(url: str) -> str:
    """Route plain ``postgres://`` / ``postgresql://`` URLs to psycopg 3, the driver we ship."""
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets the demo's readers run beside its writer.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_db_engine(settings: Settings) -> Engine:
    url = normalize_database_url(settings.database_url)
    if settings.is_sqlite:
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(
        url,
        pool_size=settings.database_pool_size,
        pool_pre_ping=True,
        # psycopg reports -1 for INSERT row counts unless asked to keep them.
        execution_options={"preserve_rowcount": True},
    )


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The process-wide engine for the process-wide settings."""
    return create_db_engine(get_settings())


@lru_cache(maxsize=1)
def get_session_factory() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)
