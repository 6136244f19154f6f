"""Running ``livedash`` commands in-process against a fresh database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from pipeline.cli import app
from pipeline.db.engine import get_engine, get_session_factory
from pipeline.settings import get_settings

Invoke = Callable[..., Result]


def clear_process_caches() -> None:
    get_settings.cache_clear()
    get_engine.cache_clear()
    get_session_factory.cache_clear()


@pytest.fixture
def livedash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    """``livedash(*args)`` runs the CLI on a new SQLite database that ``db upgrade`` has migrated."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("SECRET_KEY", "cli-test-secret")
    clear_process_caches()
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), catch_exceptions=False)

    assert invoke("db", "upgrade").exit_code == 0
    yield invoke
    get_engine().dispose()
    clear_process_caches()
