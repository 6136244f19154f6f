"""The budget ledger's rules one reservation at a time (SQLite): the budget that applies, what fits."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from pipeline.db.models import CompanyAISpend
from pipeline.settings import Settings
from pipeline.stages.budgets import Settlement, budget_of, reserve, set_budget, settle
from tests.factories import make_company

MONTH = date(2026, 12, 1)


def test_the_default_applies_until_the_company_has_a_budget_of_its_own(
    sqlite_engine: Engine, sqlite_settings: Settings
) -> None:
    settings = sqlite_settings.model_copy(update={"ai_monthly_budget_default_eur": Decimal("5.00")})
    with sessionmaker(sqlite_engine).begin() as db:
        company_id = make_company(db).id
        # Given no budget of its own: the default; then its own; then --none: unlimited, whatever the default
        assert budget_of(db, company_id, settings) == Decimal("5.00")
        set_budget(db, company_id, Decimal("25.00"))
        assert budget_of(db, company_id, settings) == Decimal("25.00")
        set_budget(db, company_id, None)
        assert budget_of(db, company_id, settings) is None


def test_only_what_fits_is_reserved_and_settling_swaps_the_reservation_for_the_cost(
    sqlite_engine: Engine,
) -> None:
    with sessionmaker(sqlite_engine).begin() as db:
        company_id = make_company(db).id
        # Given a budget of 1.00 EUR: reservations of 0.40 each fit twice, in order, and an unlimited one all
        assert reserve(db, company_id, MONTH, [Decimal("0.40")] * 3, Decimal("1.00")) == 2
        assert reserve(db, company_id, MONTH, [Decimal("0.30")], Decimal("1.00")) == 0
        # When one answer cost 0.10 and the other was not billed
        settle(
            db,
            [
                Settlement(company_id, MONTH, Decimal("0.40"), Decimal("0.10")),
                Settlement(company_id, MONTH, Decimal("0.40"), Decimal(0)),
            ],
        )
        # Then the month holds the cost only, and what it freed can be reserved again
        row = db.get(CompanyAISpend, (company_id, MONTH))
        assert row is not None
        db.refresh(row)
        assert (row.reserved_eur, row.spent_eur) == (Decimal(0), Decimal("0.10"))
        assert reserve(db, company_id, MONTH, [Decimal("0.40")] * 3, Decimal("1.00")) == 2
        # And a reservation released twice never takes the ledger below zero
        settle(db, [Settlement(company_id, MONTH, Decimal("5.00"), Decimal(0))])
        db.refresh(row)
        assert row.reserved_eur == 0
