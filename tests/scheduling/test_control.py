"""Operator control: the admin API's actions, validated, as state every replica reads."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from pipeline.scheduling.control import InvalidAction, apply_action
from pipeline.scheduling.jobs import UnknownScheduler
from pipeline.scheduling.overview import scheduler_overviews
from pipeline.settings import Settings
from tests.scheduling.conftest import RecordingPublisher


def _controls(engine: Engine, settings: Settings) -> dict[str, str]:
    return {overview.id: overview.control for overview in scheduler_overviews(engine, settings)}


def test_stop_all_and_start_all_reach_every_scheduler(
    sqlite_engine: Engine, sqlite_settings: Settings, publisher: RecordingPublisher
) -> None:
    result = apply_action(
        sqlite_engine, sqlite_settings, "stopAll", None, publish=publisher, requested_by="test"
    )
    assert result.message == "Action 'stopAll' completed successfully"
    assert set(_controls(sqlite_engine, sqlite_settings).values()) == {"STOPPED"}

    apply_action(sqlite_engine, sqlite_settings, "startAll", None, publish=publisher, requested_by="test")
    assert set(_controls(sqlite_engine, sqlite_settings).values()) == {"ACTIVE"}


def test_pause_and_resume_change_one_scheduler(
    sqlite_engine: Engine, sqlite_settings: Settings, publisher: RecordingPublisher
) -> None:
    apply_action(
        sqlite_engine, sqlite_settings, "pause", "session-processing", publish=publisher, requested_by="t"
    )
    controls = _controls(sqlite_engine, sqlite_settings)
    assert controls["session-processing"] == "PAUSED"
    assert controls["csv-import"] == "ACTIVE"
    apply_action(
        sqlite_engine, sqlite_settings, "resume", "session-processing", publish=publisher, requested_by="t"
    )
    assert _controls(sqlite_engine, sqlite_settings)["session-processing"] == "ACTIVE"


@pytest.mark.parametrize(
    ("action", "scheduler_id", "error", "message"),
    [
        ("explode", "csv-import", InvalidAction, "unknown action 'explode'"),
        (
            "trigger",
            None,
            InvalidAction,
            "schedulerId is required for trigger, pause, resume, start, stop actions",
        ),
        ("pause", "", InvalidAction, "schedulerId is required"),
        (
            "pause",
            "nope",
            UnknownScheduler,
            "unknown scheduler 'nope' \\(known: csv-import, import-processing",
        ),
    ],
)
def test_bad_actions_are_refused_with_the_reason_and_change_nothing(
    sqlite_engine: Engine,
    sqlite_settings: Settings,
    publisher: RecordingPublisher,
    action: str,
    scheduler_id: str | None,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        apply_action(
            sqlite_engine, sqlite_settings, action, scheduler_id, publish=publisher, requested_by="test"
        )
    assert set(_controls(sqlite_engine, sqlite_settings).values()) == {"ACTIVE"}
    assert publisher.sent == []
