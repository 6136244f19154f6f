"""What one analysis request cost, from the model prices in the database (``AIModelPricing``).

Upstream's pricing was fragile (``../shared/spec/domain.md`` §5.3, §10 item 15): it looked up the dated
snapshot name the response reports, fell back to gpt-4-turbo rates for anything unknown, ignored the Batch
discount and fixed USD to EUR at 0.85. Here:

* A dated snapshot (``gpt-4o-2024-11-20``) is priced as its base model (``gpt-4o``) unless it is a model of
  its own (``gpt-4o-2024-08-06`` is); no other guessing, so ``gpt-4o-mini-...`` never becomes ``gpt-4o``.
* A model without a price valid at the request's time is priced at zero and marked ``known=False``, for the
  caller to report; never at an invented rate.
* Batch requests cost :data:`BATCH_DISCOUNT` of the synchronous price.
* The EUR rate is the caller's (a setting), passed in.

Unit prices are USD per token, as ``AIProcessingRequest.prompt_token_cost``/``completion_token_cost`` store
them (the column names say "cost" but hold unit prices, as upstream).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from pipeline.db.models import AIModel, AIModelPricing

__all__ = ["BATCH_DISCOUNT", "Cost", "price_request", "resolve_model_name"]

#: What a Batch API request costs relative to the same synchronous request (OpenAI: 50 % off).
BATCH_DISCOUNT: Final = 0.5

#: A dated snapshot name: ``<base>-YYYY-MM-DD``, the form OpenAI's responses report.
_SNAPSHOT = re.compile(r"(?P<base>.+)-\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Cost:
    """The price of one request.

    Parameters:
      prompt_unit_usd(float): USD per prompt token, discount included.
      completion_unit_usd(float): USD per completion token, discount included.
      total_usd(float): What the request cost in USD.
      total_eur(float): The same in EUR.
      known(bool): Whether a price was found; when not, every amount is 0.
      model(str | None): The priced model the name resolved to; ``None`` when not known.
    """

    prompt_unit_usd: float
    completion_unit_usd: float
    total_usd: float
    total_eur: float
    known: bool
    model: str | None


_UNKNOWN = Cost(
    prompt_unit_usd=0.0, completion_unit_usd=0.0, total_usd=0.0, total_eur=0.0, known=False, model=None
)


def resolve_model_name(name: str, known: Collection[str]) -> str | None:
    """The known model ``name`` stands for: itself, else the base of a dated snapshot, else ``None``."""
    if name in known:
        return name
    snapshot = _SNAPSHOT.fullmatch(name)
    if snapshot is not None and snapshot["base"] in known:
        return snapshot["base"]
    return None


def price_request(
    db: Session,
    model: str,
    *,
    prompt_tokens: int,
    completion_tokens: int,
    at: datetime,
    batch: bool,
    eur_per_usd: float,
) -> Cost:
    """The cost of a request to ``model`` (as named in the response or the batch line) made at ``at``.

    ``at`` must be aware. Raises ``ValueError`` for negative token counts.
    """
    if prompt_tokens < 0 or completion_tokens < 0:
        raise ValueError(f"token counts must not be negative: {prompt_tokens}, {completion_tokens}")
    snapshot = _SNAPSHOT.fullmatch(model)
    candidates = {model} if snapshot is None else {model, snapshot["base"]}
    # One query for the name and its base: every candidate model with its prices valid at `at` (none: NULLs),
    # so that a model that exists but has no price then is not priced as its base either.
    rows = db.execute(
        select(AIModel.name, AIModelPricing.prompt_token_cost, AIModelPricing.completion_token_cost)
        .outerjoin(
            AIModelPricing,
            and_(
                AIModelPricing.ai_model_id == AIModel.id,
                AIModelPricing.effective_from <= at,
                or_(AIModelPricing.effective_until.is_(None), AIModelPricing.effective_until > at),
            ),
        )
        .where(AIModel.name.in_(candidates))
        .order_by(AIModelPricing.effective_from.desc())
    ).all()
    resolved = resolve_model_name(model, {row.name for row in rows})
    price = next((row for row in rows if row.name == resolved and row.prompt_token_cost is not None), None)
    if price is None:
        return _UNKNOWN
    discount = BATCH_DISCOUNT if batch else 1.0
    prompt_unit = price.prompt_token_cost * discount
    completion_unit = price.completion_token_cost * discount
    total_usd = prompt_tokens * prompt_unit + completion_tokens * completion_unit
    return Cost(
        prompt_unit_usd=prompt_unit,
        completion_unit_usd=completion_unit,
        total_usd=total_usd,
        total_eur=total_usd * eur_per_usd,
        known=True,
        model=resolved,
    )
