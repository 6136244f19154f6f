"""What AI analysis cost: the ledger (``ai_processing_request``) per company, and per model, mode or day.

One query, grouped in the database: bounded memory whatever the history. Costs are summed as ``NUMERIC``, so
on PostgreSQL a total is the exact sum of the recorded amounts, returned as :class:`~decimal.Decimal`.
Only billed requests count (tokens or a cost recorded): a failed call that OpenAI did not bill is no cost.
A request's mode is ``batch`` when it went through a batch, else ``sync``.

``cost_per_1000_sessions`` divides a group's cost by the distinct sessions it billed: what analysing a
thousand sessions costs, retries and re-analyses included.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, Numeric, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from pipeline.db.bulk import is_postgresql
from pipeline.db.models import AIProcessingRequest, ChatSession, Company

__all__ = ["Breakdown", "CostLine", "cost_lines"]

#: The dimension beside the company that ``livedash costs --by`` groups by; None: model and mode.
Breakdown = Literal["model", "mode", "day"]

_EUR = Numeric(18, 9)
_PER_SESSIONS = 1000


@dataclass(frozen=True)
class CostLine:
    """One group of billed requests: a company with a model, a mode and/or a day ('' where not grouped)."""

    company_id: uuid.UUID
    company_name: str
    model: str
    mode: str
    day: str
    requests: int
    sessions: int
    prompt_tokens: int
    completion_tokens: int
    cost_eur: Decimal

    @property
    def cost_per_1000_sessions(self) -> Decimal:
        if not self.sessions:
            return Decimal(0)
        return (self.cost_eur * _PER_SESSIONS / self.sessions).quantize(Decimal("0.000001"))

    def as_json(self) -> dict[str, Any]:
        return {
            "companyId": str(self.company_id),
            "company": self.company_name,
            "model": self.model or None,
            "mode": self.mode or None,
            "day": self.day or None,
            "requests": self.requests,
            "sessions": self.sessions,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "costEur": str(self.cost_eur),
            "costPer1000SessionsEur": str(self.cost_per_1000_sessions),
        }


def _dimensions(by: Breakdown | None, postgresql: bool) -> dict[str, ColumnElement[Any]]:
    mode = case((AIProcessingRequest.batch_id.is_(None), "sync"), else_="batch")
    # The UTC day, whatever the session's time zone (SQLite stores UTC text).
    requested = AIProcessingRequest.requested_at
    day = func.date(func.timezone("UTC", requested) if postgresql else requested)
    blank = literal("")
    return {
        "model": AIProcessingRequest.model.expression if by in (None, "model") else blank,
        "mode": mode if by in (None, "mode") else blank,
        "day": day if by == "day" else blank,
    }


def cost_lines(
    db: Session,
    *,
    company_id: uuid.UUID | None = None,
    since: date | datetime | None = None,
    by: Breakdown | None = None,
) -> list[CostLine]:
    """The billed requests per company and ``by`` (None: model and mode), of ``company_id`` only if given,
    requested at or after ``since`` if given; by company name, then the other dimensions."""
    dimensions = _dimensions(by, is_postgresql(db))
    columns = [dimension.label(name) for name, dimension in dimensions.items()]
    statement = (
        select(
            Company.id,
            Company.name,
            *columns,
            func.count(AIProcessingRequest.id),
            func.count(func.distinct(AIProcessingRequest.session_id)),
            func.coalesce(func.sum(AIProcessingRequest.prompt_tokens), 0),
            func.coalesce(func.sum(AIProcessingRequest.completion_tokens), 0),
            func.coalesce(func.sum(cast(AIProcessingRequest.total_cost_eur, _EUR)), 0),
        )
        .join(ChatSession, ChatSession.id == AIProcessingRequest.session_id)
        .join(Company, Company.id == ChatSession.company_id)
        .where(
            or_(
                AIProcessingRequest.total_tokens > 0,
                AIProcessingRequest.prompt_tokens > 0,
                AIProcessingRequest.total_cost_eur > 0,
            )
        )
        .group_by(Company.id, Company.name, *dimensions.values())
        .order_by(Company.name, Company.id, *dimensions.values())
    )
    if company_id is not None:
        statement = statement.where(Company.id == company_id)
    if since is not None:
        start = since if isinstance(since, datetime) else datetime.combine(since, time(), UTC)
        statement = statement.where(AIProcessingRequest.requested_at >= start)
    return [
        CostLine(
            row[0],
            row[1],
            str(row[2]),
            str(row[3]),
            str(row[4]),
            int(row[5]),
            int(row[6]),
            int(row[7]),
            int(row[8]),
            Decimal(row[9]),
        )
        for row in db.execute(statement)
    ]
