"""A migrated SQLite database for a test, copied from one migrated once per test session.

Running the migrations on SQLite took about half a second, before each of some 200 tests; a file copy takes
a millisecond. The template is the ``migrated_sqlite_file`` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import Engine

from pipeline.db.engine import create_db_engine
from pipeline.settings import Settings

__all__ = ["migrated_sqlite_engine"]


def migrated_sqlite_engine(settings: Settings, template: Path) -> Engine:
    """An engine on ``settings``' SQLite file, which starts as a copy of the migrated ``template``.

    The copy is made before the engine's first connection, so no connection sees the file change under it.
    """
    engine = create_db_engine(settings)
    database = engine.url.database
    if not database:
        raise ValueError(f"not a SQLite file: {engine.url}")
    shutil.copyfile(template, database)
    return engine
