"""Monthly AI budgets per company: reserve a request's worst-case cost before paying, settle it when answered.

A company's budget is its ``company_ai_budget`` row (NULL: unlimited), else ``AI_MONTHLY_BUDGET_DEFAULT_EUR``
(unset: unlimited). What a company has used in a month is its ``company_ai_spend`` row: ``spent_eur`` (the
cost of the answers ingested) plus ``reserved_eur`` (the worst case of the requests in flight).

:func:`reserve` takes that row's lock (``SELECT ... FOR UPDATE``) and adds to ``reserved_eur`` only what
still fits under the budget, in the caller's transaction: two workers reserving at once for one company wait
for each other, and the second sees what the first reserved. So whatever the number of processes and
replicas, reserved plus spent never passes the budget, and since an answer never costs more than its worst
case, neither does the ledger. :func:`settle` swaps a request's reservation for its actual cost.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import Table, case, func, select, update
from sqlalchemy.orm import Session

from pipeline.analysis.pricing import EUR_QUANTUM
from pipeline.db.bulk import upsert_statement
from pipeline.db.models import Company, CompanyAIBudget, CompanyAISpend
from pipeline.settings import Settings

__all__ = [
    "BUDGET_REACHED",
    "BudgetUse",
    "Settlement",
    "budget_of",
    "budget_uses",
    "month_of",
    "reserve",
    "set_budget",
    "settle",
    "to_eur",
]

#: The status a request or an analysis waits with while its company's budget has no room for it.
BUDGET_REACHED = "budget reached"

_spend = cast(Table, CompanyAISpend.__table__)


def month_of(at: datetime) -> date:
    """The month (its first day, UTC) that a reservation or a cost made at ``at`` counts in."""
    day = at.astimezone(UTC)
    return date(day.year, day.month, 1)


def to_eur(amount: float) -> Decimal:
    """A float cost (the ledger's ``total_cost_eur``) as the exact decimal the budget ledger adds up."""
    return Decimal(repr(amount)).quantize(EUR_QUANTUM)


def budget_of(db: Session, company_id: uuid.UUID, settings: Settings) -> Decimal | None:
    """The company's monthly budget in EUR; ``None``: unlimited."""
    row = db.get(CompanyAIBudget, company_id)
    return settings.ai_monthly_budget_default_eur if row is None else row.monthly_eur


def set_budget(db: Session, company_id: uuid.UUID, monthly_eur: Decimal | None) -> None:
    """Give the company a monthly budget (``None``: unlimited); the caller commits.

    Raising it lets what waits with ``budget reached`` go on at the next sweep or batch submission.
    """
    statement = upsert_statement(db, cast(Table, CompanyAIBudget.__table__))
    db.execute(
        statement.values(company_id=company_id, monthly_eur=monthly_eur).on_conflict_do_update(
            index_elements=["company_id"],
            set_={"monthly_eur": statement.excluded.monthly_eur, "updated_at": func.now()},
        )
    )


def _use_row(db: Session, company_id: uuid.UUID, month: date) -> None:
    """Create the company's row of ``month`` if it has none yet."""
    db.execute(
        upsert_statement(db, _spend)
        .values(company_id=company_id, month=month, reserved_eur=0, spent_eur=0)
        .on_conflict_do_nothing(index_elements=["company_id", "month"])
    )


def _locked_use(db: Session, company_id: uuid.UUID, month: date) -> tuple[Decimal, Decimal]:
    """The company's (reserved, spent) of ``month``, its row created if need be and locked until commit."""
    _use_row(db, company_id, month)
    reserved, spent = db.execute(
        select(CompanyAISpend.reserved_eur, CompanyAISpend.spent_eur)
        .where(CompanyAISpend.company_id == company_id, CompanyAISpend.month == month)
        .with_for_update()
    ).one()
    return Decimal(reserved), Decimal(spent)


def reserve(
    db: Session, company_id: uuid.UUID, month: date, amounts: Sequence[Decimal], budget: Decimal | None
) -> int:
    """Reserve the longest prefix of ``amounts`` that fits under ``budget``; return its length.

    In the caller's transaction, under the lock of the company's month row: the reservation and whatever the
    caller commits with it (a batch claim, a session claim) become visible to the others together. Callers
    reserving for several companies in one transaction go in the order of the company ids (no deadlock).
    """
    if not amounts:
        return 0
    reserved, spent = _locked_use(db, company_id, month)
    taken, total = 0, Decimal(0)
    for amount in amounts:
        if budget is not None and reserved + spent + total + amount > budget:
            break
        taken += 1
        total += amount
    if total:
        db.execute(
            update(CompanyAISpend)
            .where(CompanyAISpend.company_id == company_id, CompanyAISpend.month == month)
            .values(reserved_eur=CompanyAISpend.reserved_eur + total, updated_at=func.now())
        )
    return taken


@dataclass(frozen=True, slots=True)
class Settlement:
    """A request's reservation (``reserved`` in ``month``; none: 0) replaced by what it cost."""

    company_id: uuid.UUID
    month: date
    reserved: Decimal
    cost: Decimal


def settle(db: Session, settlements: Iterable[Settlement]) -> None:
    """Release the reservations and add the costs, one statement per company month; the caller commits.

    Nothing is read back (the update locks its row itself), so the statements can be sent in libpq's
    pipeline mode with those before them.
    """
    totals: dict[tuple[uuid.UUID, date], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for item in settlements:
        total = totals[(item.company_id, item.month)]
        total[0] += item.reserved
        total[1] += item.cost
    # In key order, as reserve locks them, so that two settling transactions never wait on each other in turn.
    for (company_id, month), (reserved, cost) in sorted(totals.items()):
        _use_row(db, company_id, month)
        # Core: an ORM update would synchronise the session, reading the rows back.
        db.connection().execute(
            update(_spend)
            .where(_spend.c.company_id == company_id, _spend.c.month == month)
            .values(
                # Never below zero, even for a reservation released twice by a bug: the budget stays honest.
                reserved_eur=case(
                    (_spend.c.reserved_eur < reserved, 0), else_=_spend.c.reserved_eur - reserved
                ),
                spent_eur=_spend.c.spent_eur + cost,
                updated_at=func.now(),
            )
        )


@dataclass(frozen=True)
class BudgetUse:
    """One company's month: its budget (``None``: unlimited), what is spent and what is reserved."""

    company_id: uuid.UUID
    company_name: str
    budget: Decimal | None
    spent: Decimal
    reserved: Decimal

    @property
    def used(self) -> Decimal:
        return self.spent + self.reserved

    @property
    def ratio(self) -> float | None:
        """Used over budget (1.0: reached); ``None`` for an unlimited budget."""
        if self.budget is None:
            return None
        if self.budget == 0:
            return 1.0
        return float(self.used / self.budget)


def budget_uses(db: Session, settings: Settings, month: date) -> list[BudgetUse]:
    """Every company's budget and use in ``month``, by name."""
    rows = db.execute(
        select(
            Company.id,
            Company.name,
            CompanyAIBudget.company_id,
            CompanyAIBudget.monthly_eur,
            CompanyAISpend.spent_eur,
            CompanyAISpend.reserved_eur,
        )
        .outerjoin(CompanyAIBudget, CompanyAIBudget.company_id == Company.id)
        .outerjoin(
            CompanyAISpend, (CompanyAISpend.company_id == Company.id) & (CompanyAISpend.month == month)
        )
        .order_by(Company.name, Company.id)
    ).all()
    return [
        BudgetUse(
            company_id,
            name,
            settings.ai_monthly_budget_default_eur if has_row is None else monthly,
            Decimal(spent or 0),
            Decimal(reserved or 0),
        )
        for company_id, name, has_row, monthly, spent, reserved in rows
    ]
