"""Aware UTC timestamps on both databases, and CSV passwords encrypted at rest."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import sessionmaker

from pipeline.db.models import Company
from pipeline.db.secrets import PasswordBox, SecretKeyMissing, WrongSecretKey


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    fixture = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


def test_timestamps_come_back_as_aware_utc(engine: Engine) -> None:
    # Given a company created at 13:00 in UTC+2
    created = datetime(2025, 6, 1, 13, 0, tzinfo=timezone(timedelta(hours=2)))
    with sessionmaker(engine).begin() as db:
        db.add(Company(name="Acme", csv_url="https://example.com/a.csv", created_at=created))

    # When it is read back
    with sessionmaker(engine)() as db:
        stored = db.scalars(select(Company.created_at)).one()

    # Then it is the same instant, in UTC
    assert stored == created
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored.hour == 11


def test_a_naive_timestamp_is_refused(engine: Engine) -> None:
    # Given a naive datetime (which would be read in the server's zone)
    naive = datetime(2025, 6, 1, 13, 0)

    # When it is stored
    # Then the write fails instead of guessing a zone
    with pytest.raises(StatementError, match="naive datetime"), sessionmaker(engine).begin() as db:
        db.add(Company(name="Acme", csv_url="https://example.com/a.csv", created_at=naive))


def test_a_password_round_trips_and_is_not_stored_in_plain_text(engine: Engine) -> None:
    # Given a password box and a company whose password is stored through it
    box = PasswordBox("s3cret-key")
    with sessionmaker(engine).begin() as db:
        db.add(
            Company(
                name="Acme",
                csv_url="https://example.com/a.csv",
                csv_password_encrypted=box.encrypt("hunter2"),
            )
        )

    # When the raw column is read
    with engine.connect() as connection:
        raw = connection.execute(text("SELECT csv_password_encrypted FROM company")).scalar_one()

    # Then it does not contain the password, and decrypts back to it
    assert "hunter2" not in raw
    assert box.decrypt(raw) == "hunter2"
    assert "s3cret" not in repr(box)


def test_a_password_needs_the_right_secret_key() -> None:
    # Given a password encrypted with one key
    token = PasswordBox("key-one").encrypt("hunter2")

    # Then another key cannot read it, and no key at all cannot even try
    with pytest.raises(WrongSecretKey):
        PasswordBox("key-two").decrypt(token)
    with pytest.raises(SecretKeyMissing):
        PasswordBox("")
