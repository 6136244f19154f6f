"""What one analysis request cost: pure arithmetic on token counts and a model's unit prices.

Nothing here reads the database: the caller looks the price up (``pipeline.stages.ai_models.price_at``) and
passes it in. The rules:

* A dated snapshot (``gpt-4o-2024-11-20``) is priced as its base model (``gpt-4o``) unless it is a model of
  its own (``gpt-4o-2024-08-06`` is); no other guessing, so ``gpt-4o-mini-...`` never becomes ``gpt-4o``
  (:func:`resolve_model_name`).
* A model without a price valid at the request's time is priced at zero and marked ``known=False``, for the
  caller to report; never at an invented rate.
* Batch requests cost :data:`BATCH_DISCOUNT` of the synchronous price.
* The EUR rate is the caller's (the ``EUR_PER_USD`` setting), passed in.

Unit prices are USD per token, as ``AIProcessingRequest.prompt_token_cost``/``completion_token_cost`` store
them (the column names say "cost" but hold unit prices).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Final

__all__ = [
    "BATCH_DISCOUNT",
    "Cost",
    "Price",
    "Usage",
    "cost_of",
    "model_name_candidates",
    "resolve_model_name",
    "worst_case_eur",
]

#: What a Batch API request costs relative to the same synchronous request (OpenAI: 50 % off).
BATCH_DISCOUNT: Final = 0.5

#: A dated snapshot name: ``<base>-YYYY-MM-DD``, the form OpenAI's responses report.
_SNAPSHOT = re.compile(r"(?P<base>.+)-\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Price:
    """A model's synchronous unit prices in USD per token, as valid at some time.

    Parameters:
      model(str): The priced model's name.
      prompt_usd(float): USD per prompt token.
      completion_usd(float): USD per completion token.
    """

    model: str
    prompt_usd: float
    completion_usd: float


@dataclass(frozen=True)
class Usage:
    """The tokens one request was billed for."""

    prompt_tokens: int
    completion_tokens: int


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


def model_name_candidates(name: str) -> set[str]:
    """The names a price of ``name`` may be found under: itself, and the base of a dated snapshot."""
    snapshot = _SNAPSHOT.fullmatch(name)
    return {name} if snapshot is None else {name, snapshot["base"]}


def resolve_model_name(name: str, known: Collection[str]) -> str | None:
    """The known model ``name`` stands for: itself, else the base of a dated snapshot, else ``None``."""
    if name in known:
        return name
    snapshot = _SNAPSHOT.fullmatch(name)
    if snapshot is not None and snapshot["base"] in known:
        return snapshot["base"]
    return None


def cost_of(usage: Usage, price: Price | None, *, batch: bool, eur_per_usd: float) -> Cost:
    """What ``usage`` cost at ``price`` (``None``: no price known, so zero and ``known=False``).

    Raises ``ValueError`` for negative token counts.
    """
    if usage.prompt_tokens < 0 or usage.completion_tokens < 0:
        raise ValueError(
            f"token counts must not be negative: {usage.prompt_tokens}, {usage.completion_tokens}"
        )
    if price is None:
        return _UNKNOWN
    discount = BATCH_DISCOUNT if batch else 1.0
    prompt_unit = price.prompt_usd * discount
    completion_unit = price.completion_usd * discount
    total_usd = usage.prompt_tokens * prompt_unit + usage.completion_tokens * completion_unit
    return Cost(
        prompt_unit_usd=prompt_unit,
        completion_unit_usd=completion_unit,
        total_usd=total_usd,
        total_eur=total_usd * eur_per_usd,
        known=True,
        model=price.model,
    )


#: EUR amounts reserved and spent are kept to this precision (``NUMERIC(18, 9)`` in the database).
EUR_QUANTUM: Final = Decimal("0.000000001")


def worst_case_eur(
    prompt_tokens: int, max_completion_tokens: int, price: Price | None, *, batch: bool, eur_per_usd: float
) -> Decimal:
    """The most a request can cost in EUR, rounded up: its prompt and every completion token it may get.

    A model without a known price reserves nothing: its answers are recorded at zero (see :func:`cost_of`).
    """
    cost = cost_of(Usage(prompt_tokens, max_completion_tokens), price, batch=batch, eur_per_usd=eur_per_usd)
    return Decimal(repr(cost.total_eur)).quantize(EUR_QUANTUM, rounding=ROUND_CEILING)
