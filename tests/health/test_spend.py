"""The admin routes of AI spend: a company's budget read and set, and the cost report (bearer token)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from pipeline.health.api import create_app
from pipeline.settings import Settings
from tests.factories import make_company
from tests.health.conftest import TOKEN
from tests.health.fakes import FakeSources

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(settings: Settings, engine: Engine, sources: FakeSources) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings, engine=engine, aggregator=sources.aggregator(), publish=lambda message: message)
    ) as running:
        yield running


@pytest.fixture
def company_id(engine: Engine) -> uuid.UUID:
    with sessionmaker(engine).begin() as db:
        return make_company(db).id


def test_a_budget_is_set_read_and_cleared(client: TestClient, company_id: uuid.UUID) -> None:
    path = f"/api/admin/companies/{company_id}/budget"
    # Given a company without a budget of its own (and no default): unlimited
    assert client.get(path, headers=AUTH).json()["monthlyEur"] is None

    # When a budget of 25.00 EUR is put, then read
    put = client.put(path, headers=AUTH, json={"monthlyEur": "25.00"})
    read = client.get(path, headers=AUTH).json()

    # Then both answer it with this month's use; null makes it unlimited again
    assert put.status_code == 200
    assert (read["monthlyEur"], read["spentEur"], read["budgetReached"]) == ("25.00", "0", False)
    assert client.put(path, headers=AUTH, json={"monthlyEur": None}).json()["monthlyEur"] is None


def test_a_bad_budget_an_unknown_company_and_no_token_are_refused(
    client: TestClient, company_id: uuid.UUID
) -> None:
    path = f"/api/admin/companies/{company_id}/budget"
    assert client.put(path, headers=AUTH, json={"monthlyEur": "-1"}).status_code == 400
    assert client.put(path, headers=AUTH, json={"monthlyEur": "1.001"}).status_code == 400
    unknown = client.get(f"/api/admin/companies/{uuid.uuid4()}/budget", headers=AUTH)
    assert unknown.status_code == 404 and unknown.json()["error"].startswith("no company with id")
    assert client.get(path).status_code == 401
    assert client.get("/api/admin/costs").status_code == 401


def test_the_cost_report_answers_lines_and_an_exact_total(client: TestClient) -> None:
    # Given no billed request at all
    # When the report is asked for, by mode
    report = client.get("/api/admin/costs", headers=AUTH, params={"by": "mode"})

    # Then it answers no line and a zero total; a bad breakdown is refused
    assert report.status_code == 200 and report.json() == {"lines": [], "totalEur": "0"}
    assert client.get("/api/admin/costs", headers=AUTH, params={"by": "week"}).status_code == 400
    misspelt = client.get("/api/admin/costs", headers=AUTH, params={"compnay": "x"})
    assert misspelt.status_code == 400 and misspelt.json()["errors"] == [
        "query.compnay: unknown parameter (known: by, company, since)"
    ]
