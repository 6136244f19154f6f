"""The admin routes of AI spend (bearer token): the cost report, and each company's monthly budget.

- ``GET /api/admin/costs?company=&since=&by=``: what ``livedash costs`` prints (:mod:`pipeline.costs`).
- ``GET /api/admin/companies/{companyId}/budget``: the budget and this month's use.
- ``PUT /api/admin/companies/{companyId}/budget`` ``{monthlyEur}``: set it (``null``: unlimited).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker
from starlette.concurrency import run_in_threadpool

from pipeline.costs import cost_lines
from pipeline.db.models import Company
from pipeline.health.admin import FAILURES, require_admin
from pipeline.health.aggregator import describe_error
from pipeline.health.bodies import Failure, failure_response, json_response
from pipeline.health.context import ApiContext, Context
from pipeline.settings import Settings
from pipeline.stages.budgets import budget_of, budget_uses, month_of, set_budget

__all__ = ["Budget", "BudgetChange", "CostLineBody", "CostReport", "spend_router"]

COSTS_PATH = "/api/admin/costs"
_COST_PARAMETERS = frozenset({"company", "since", "by"})
BUDGET_PATH = "/api/admin/companies/{companyId}/budget"


class CostLineBody(BaseModel):
    companyId: str
    company: str
    model: str | None
    mode: str | None
    day: str | None
    requests: int
    sessions: int
    promptTokens: int
    completionTokens: int
    costEur: str
    costPer1000SessionsEur: str


class CostReport(BaseModel):
    lines: list[CostLineBody]
    totalEur: str


class Budget(BaseModel):
    companyId: str
    month: date
    monthlyEur: str | None = Field(description="null: unlimited")
    spentEur: str
    reservedEur: str
    budgetReached: bool


class BudgetChange(BaseModel):
    monthlyEur: Annotated[str, Field(pattern=r"^[0-9]{1,10}(\.[0-9]{1,2})?$")] | None = Field(
        description='EUR per month as a decimal string, in cents at most ("25.00"); null: unlimited'
    )

    @property
    def amount(self) -> Decimal | None:
        return None if self.monthlyEur is None else Decimal(self.monthlyEur)


spend_router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)])

_DOWN: dict[int | str, dict[str, Any]] = {
    503: {"model": Failure, "description": "The admin API is disabled, or the database is down"}
}
_UNKNOWN: dict[int | str, dict[str, Any]] = {404: {"model": Failure, "description": "No such company"}}
_INVALID: dict[int | str, dict[str, Any]] = {400: {"model": Failure, "description": "Validation failed"}}


def _report(
    context: ApiContext,
    company: uuid.UUID | None,
    since: date | None,
    by: Literal["model", "mode", "day"] | None,
) -> CostReport:
    with sessionmaker(context.engine)() as db:
        lines = cost_lines(db, company_id=company, since=since, by=by)
    return CostReport(
        lines=[CostLineBody(**line.as_json()) for line in lines],
        totalEur=str(sum((line.cost_eur for line in lines), Decimal(0))),
    )


@spend_router.get(
    COSTS_PATH,
    response_model=None,
    responses={200: {"model": CostReport, "description": "The cost lines"}, **_INVALID, **FAILURES, **_DOWN},
)
async def costs(
    request: Request,
    context: Context,
    company: Annotated[uuid.UUID | None, Query(description="One company only")] = None,
    since: Annotated[date | None, Query(description="Requests from this day (UTC)")] = None,
    by: Annotated[Literal["model", "mode", "day"] | None, Query(description="Beside the company")] = None,
) -> Response:
    """Requests, tokens, cost and cost per 1,000 sessions per company and model, mode or day (exact sums)."""
    if unknown := sorted(set(request.query_params) - _COST_PARAMETERS):
        # A misspelt filter must not silently answer for every company.
        errors = [f"query.{name}: unknown parameter (known: by, company, since)" for name in unknown]
        return json_response(Failure(success=False, error="Validation failed", errors=errors), 400)
    try:
        report = await run_in_threadpool(_report, context, company, since, by)
    except SQLAlchemyError as exc:
        return failure_response(503, f"database unavailable: {describe_error(exc)}")
    return json_response(report)


def _budget(context: ApiContext, company_id: uuid.UUID, change: BudgetChange | None) -> Budget | None:
    settings: Settings = context.settings
    with sessionmaker(context.engine).begin() as db:
        if db.get(Company, company_id) is None:
            return None
        if change is not None:
            set_budget(db, company_id, change.amount)
            db.flush()
        month = month_of(datetime.now(UTC))
        limit = budget_of(db, company_id, settings)
        [use] = [use for use in budget_uses(db, settings, month) if use.company_id == company_id]
    return Budget(
        companyId=str(company_id),
        month=month,
        monthlyEur=None if limit is None else str(limit),
        spentEur=str(use.spent),
        reservedEur=str(use.reserved),
        budgetReached=(use.ratio or 0) >= 1,
    )


async def _answer(context: ApiContext, company_id: uuid.UUID, change: BudgetChange | None) -> Response:
    try:
        budget = await run_in_threadpool(_budget, context, company_id, change)
    except SQLAlchemyError as exc:
        return failure_response(503, f"database unavailable: {describe_error(exc)}")
    if budget is None:
        return failure_response(404, f"no company with id '{company_id}'")
    return json_response(budget)


_BUDGET_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Budget, "description": "The company's budget and this month's use"},
    **_INVALID,
    **_UNKNOWN,
    **FAILURES,
    **_DOWN,
}


@spend_router.get(BUDGET_PATH, response_model=None, responses=_BUDGET_RESPONSES)
async def get_budget(companyId: uuid.UUID, context: Context) -> Response:
    """A company's monthly AI budget (null: unlimited) and what it spent and holds reserved this month."""
    return await _answer(context, companyId, None)


@spend_router.put(BUDGET_PATH, response_model=None, responses=_BUDGET_RESPONSES)
async def put_budget(companyId: uuid.UUID, change: BudgetChange, context: Context) -> Response:
    """Set a company's monthly AI budget; what waits with "budget reached" goes on once there is room."""
    return await _answer(context, companyId, change)
