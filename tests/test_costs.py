"""`livedash costs` and its query: exact sums of the ledger per company and model, mode or day."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.costs import cost_lines
from pipeline.db.enums import AIBatchRequestStatus, AIRequestStatus
from pipeline.db.models import AIBatchRequest, AIProcessingRequest
from tests.cli.conftest import clear_process_caches
from tests.factories import make_company, make_session_with_stages

DAY_1 = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
DAY_2 = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)


def _request(session_id: uuid.UUID, cost: float, at: datetime, batch_id: uuid.UUID | None = None, *,
             model: str = "gpt-4o", tokens: tuple[int, int] = (100, 50)) -> AIProcessingRequest:  # fmt: skip
    return AIProcessingRequest(
        session_id=session_id,
        model=model,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        total_tokens=sum(tokens),
        total_cost_eur=cost,
        success=True,
        requested_at=at,
        completed_at=at,
        processing_status=AIRequestStatus.PROCESSING_COMPLETE,
        batch_id=batch_id,
    )


def _ledger(engine: Engine) -> tuple[uuid.UUID, uuid.UUID]:
    """Acme: two sync answers (0.1 + 0.2 EUR) of two sessions on day 1, one batch answer of a third on day 2,
    one unbilled failure; Globex: one sync answer with gpt-4o-mini."""
    with sessionmaker(engine).begin() as db:
        acme, globex = make_company(db, name="Acme"), make_company(db, name="Globex")
        first, second, third = (make_session_with_stages(db, acme).id for _ in range(3))
        batch = AIBatchRequest(
            company_id=acme.id,
            model="gpt-4o",
            idempotency_key="k" * 32,
            status=AIBatchRequestStatus.PROCESSED,
        )
        db.add(batch)
        db.flush()
        db.add_all(
            [
                _request(first, 0.1, DAY_1),
                _request(second, 0.2, DAY_1),
                _request(third, 0.05, DAY_2, batch.id),
                _request(third, 0.0, DAY_2, tokens=(0, 0)),
                _request(make_session_with_stages(db, globex).id, 0.01, DAY_2, model="gpt-4o-mini"),
            ]
        )
        return acme.id, globex.id


@pytest.mark.postgres
def test_costs_are_exact_sums_per_company_model_and_mode(pg_engine: Engine) -> None:
    # Given a ledger of two companies
    acme, _ = _ledger(pg_engine)

    # When the costs are read per company, model and mode
    with sessionmaker(pg_engine)() as db:
        lines = cost_lines(db)

    # Then each group has its billed requests, sessions, tokens and the exact decimal sum (0.1 + 0.2 = 0.3)
    summary = [(line.company_name, line.model, line.mode, line.requests, line.sessions, line.cost_eur)
               for line in lines]  # fmt: skip
    assert summary == [
        ("Acme", "gpt-4o", "batch", 1, 1, Decimal("0.05")),
        ("Acme", "gpt-4o", "sync", 2, 2, Decimal("0.3")),
        ("Globex", "gpt-4o-mini", "sync", 1, 1, Decimal("0.01")),
    ]
    assert lines[1].prompt_tokens == 200 and lines[1].completion_tokens == 100
    assert lines[1].cost_per_1000_sessions == Decimal("150")
    # And --by day and --since filter and group by the UTC day
    with sessionmaker(pg_engine)() as db:
        by_day = cost_lines(db, company_id=acme, by="day")
        since = cost_lines(db, company_id=acme, since=DAY_2.date(), by="mode")
    assert [(line.day, line.cost_eur) for line in by_day] == [
        ("2026-11-30", Decimal("0.3")),
        ("2026-12-01", Decimal("0.05")),
    ]
    assert [(line.mode, line.cost_eur) for line in since] == [("batch", Decimal("0.05"))]


@pytest.mark.postgres
def test_livedash_costs_prints_the_lines_as_json(
    pg_engine: Engine, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a ledger
    acme, _ = _ledger(pg_engine)
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    clear_process_caches()

    # When `livedash costs --company ID --by mode --json` runs
    result = CliRunner().invoke(app, ["costs", "--company", str(acme), "--by", "mode", "--json"])
    clear_process_caches()

    # Then it prints the company's lines and their exact total
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert [(line["mode"], line["costEur"]) for line in printed["lines"]] == [
        ("batch", "0.050000000"),
        ("sync", "0.300000000"),
    ]
    assert printed["totalEur"] == "0.350000000"


def test_a_bad_breakdown_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["costs", "--by", "week"])
    assert result.exit_code == 2 and "'week'" in result.stderr
