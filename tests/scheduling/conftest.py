"""Fixtures of the scheduling tests: a database of either kind, settings, and a recording publisher."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest
from dramatiq import Message
from sqlalchemy import Engine

from pipeline.settings import Settings


@dataclass
class RecordingPublisher:
    """Stands in for ``broker.enqueue``: keeps what it was given, or fails like a broker that is down."""

    sent: list[Message[None]] = field(default_factory=list)
    done: list[Message[None]] = field(default_factory=list)
    down: bool = False

    def __call__(self, message: Message[None]) -> Message[None]:
        if self.down:
            raise ConnectionError("RabbitMQ is down")
        self.sent.append(message)
        return message


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> tuple[Engine, Settings]:
    """The same scheduling behaviour on the embedded SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_engine"), request.getfixturevalue("sqlite_settings")
    return request.getfixturevalue("pg_engine"), request.getfixturevalue("pg_settings")


def ledger_tick_only() -> uuid.UUID | None:
    """The ``claim`` of a tick message whose tick is in the ledger: claiming must not be needed."""
    raise AssertionError("a tick with a ledger entry claimed its tick again")
