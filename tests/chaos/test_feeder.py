"""The chaos run's feeder: the data set's companies registered as a run needs them, or a loud stop."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import sessionmaker

from pipeline.db.models import Company
from pipeline.devtools.chaos import ChaosRunError
from pipeline.devtools.chaos.run import _Feeder, register_company
from pipeline.devtools.manifest import CompanyManifest

COMPANY = CompanyManifest(
    slug="acme", name="Acme", username="acme", password="a-long-enough-password-for-acme",
    timezone="Europe/Amsterdam", region="eu", csv_url="http://127.0.0.1:9/acme/sessions.csv",
    csv_path="acme/sessions.csv", sessions=1,
)  # fmt: skip


def _companies(engine: Engine) -> int:
    with sessionmaker(engine)() as db:
        return int(db.scalar(select(func.count()).select_from(Company)) or 0)


def test_a_company_of_the_data_set_is_registered_with_its_credentials_over_the_runs_plain_http(
    pg_engine: Engine,
) -> None:
    # Given the run's source server, plain http on 127.0.0.1, and a company with a username and password
    # When the run registers it
    register_company(pg_engine, "http://127.0.0.1:9", COMPANY)

    # Then it is there (credentials over plain http are refused unless the company allows them)
    assert _companies(pg_engine) == 1


def test_a_feeder_that_cannot_register_a_company_stops_the_run_with_the_reason(pg_engine: Engine) -> None:
    # Given a company the pipeline refuses (an unknown time zone), not a database outage
    refused = COMPANY.model_copy(update={"timezone": "Mars/Olympus"})
    feeder = _Feeder(pg_engine, "http://127.0.0.1:9", [refused], every=0.1)

    # When the feeder tries to register it
    feeder.start()
    deadline = time.monotonic() + 10
    while feeder.error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    feeder.stop()

    # Then the run stops with the reason instead of waiting for sessions that can never come
    with pytest.raises(ChaosRunError, match="Mars/Olympus"):
        feeder.raise_error()
    assert _companies(pg_engine) == 0
