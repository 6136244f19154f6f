"""Key rotation: several keys newest first, the old derivation still read, `livedash secrets rotate`
re-encrypting every stored password under the newest key, resumably, on the real PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.db.engine import get_engine, get_session_factory
from pipeline.db.models import Company
from pipeline.db.secrets import PasswordBox, WrongSecretKey, derive_key
from pipeline.secret_rotation import RotationProgress, rotate_passwords
from pipeline.settings import get_settings

OLD = "old-key-" + "o" * 32
NEW = "new-key-" + "n" * 32


def first_derivation_token(secret_key: str, password: str) -> str:
    """A password as the first release stored it: Fernet under SHA-256 of a prefix and the key."""
    digest = hashlib.sha256(b"livedash-csv-password:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest)).encrypt(password.encode()).decode()


def test_values_of_the_first_derivation_are_still_read() -> None:
    token = first_derivation_token(OLD, "pw-1")
    assert PasswordBox(OLD).decrypt(token) == "pw-1"
    assert not PasswordBox(OLD).is_current(token)


def test_new_values_use_hkdf_of_the_newest_key_and_old_keys_still_read() -> None:
    # Given a value under the old key, and a box whose newest key is NEW with OLD as fallback
    old_value = PasswordBox(OLD).encrypt("pw-old")
    box = PasswordBox(NEW, [OLD])

    # Then the old value is read, a new one is under HKDF(NEW), and without the fallback the old one is not
    assert box.decrypt(old_value) == "pw-old"
    assert Fernet(derive_key(NEW)).decrypt(box.encrypt("pw-new").encode()) == b"pw-new"
    with pytest.raises(WrongSecretKey):
        PasswordBox(NEW).decrypt(old_value)


def stored(engine: Engine, count: int) -> dict[uuid.UUID, str]:
    """``count`` companies with passwords under OLD, half in each derivation: their id → password."""
    passwords = {}
    with Session(engine) as db, db.begin():
        for number in range(count):
            password = f"password-{number}"
            token = (
                first_derivation_token(OLD, password) if number % 2 else PasswordBox(OLD).encrypt(password)
            )
            company = Company(
                name=f"company-{number}",
                csv_url="https://example.com/a.csv",
                csv_username="u",
                csv_password_encrypted=token,
            )
            db.add(company)
            db.flush()
            passwords[company.id] = password
        db.add(Company(name="no password", csv_url="https://example.com/b.csv"))
    return passwords


def tokens(engine: Engine) -> dict[uuid.UUID, str]:
    with Session(engine) as db:
        rows = db.execute(select(Company.id, Company.csv_password_encrypted)).all()
    return {company_id: token for company_id, token in rows if token is not None}


class Interrupted(Exception):
    pass


@pytest.mark.postgres
def test_rotation_is_resumable_and_ends_with_every_password_under_the_newest_key(pg_engine: Engine) -> None:
    # Given 7 stored passwords under the old key, and SECRET_KEY=NEW with SECRET_KEY_FALLBACKS=OLD
    passwords = stored(pg_engine, 7)
    box = PasswordBox(NEW, [OLD])

    # When a run in batches of 3 is interrupted after its first batch
    def stop(progress: RotationProgress) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        rotate_passwords(pg_engine, box, batch_size=3, on_batch=stop)

    # Then that batch is committed: 3 passwords are under the newest key, 4 not yet
    newest_only = PasswordBox(NEW)
    assert (
        sorted(newest_only.is_current(token) for token in tokens(pg_engine).values())
        == [False] * 4 + [True] * 3
    )

    # When it runs again, then a third time
    resumed = rotate_passwords(pg_engine, box, batch_size=3)
    again = rotate_passwords(pg_engine, box, batch_size=3)

    # Then the second run did the 4 left, the third nothing; every password reads with SECRET_KEY alone
    assert (resumed.rotated, resumed.current, resumed.batches) == (4, 3, 3)
    assert (again.rotated, again.current, again.unreadable) == (0, 7, [])
    assert {company_id: newest_only.decrypt(token) for company_id, token in tokens(pg_engine).items()} == (
        passwords
    )


@pytest.mark.postgres
def test_the_command_reports_a_password_no_key_reads_and_exits_1(
    pg_engine: Engine, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two passwords under OLD and one under a key nobody has any more
    stored(pg_engine, 2)
    with Session(pg_engine) as db, db.begin():
        lost_id = uuid.uuid4()
        lost = Company(
            id=lost_id,
            name="lost",
            csv_url="https://example.com/c.csv",
            csv_password_encrypted=PasswordBox("lost-key-" + "l" * 32).encrypt("x"),
        )
        db.add(lost)
    for name, value in {
        "DATABASE_URL": postgres_url,
        "SECRET_KEY": NEW,
        "SECRET_KEY_FALLBACKS": OLD,
        "DEVELOPMENT_MODE": "false",
    }.items():
        monkeypatch.setenv(name, value)
    for cache in (get_settings, get_engine, get_session_factory):
        cache.cache_clear()
    try:
        # When `livedash secrets rotate` runs
        result = CliRunner().invoke(app, ["secrets", "rotate", "--batch-size", "2"])
    finally:
        get_engine().dispose()
        for cache in (get_settings, get_engine, get_session_factory):
            cache.cache_clear()

    # Then it rotated the two, names the lost one, and exits 1
    assert result.exit_code == 1, result.output
    assert (
        "3 stored passwords: 2 re-encrypted under SECRET_KEY, 0 already were, 1 unreadable" in result.output
    )
    assert str(lost_id) in result.output
