"""Request pricing from the model prices of migration 0002: snapshots, unknown models, Batch, time, EUR."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.analysis import BATCH_DISCOUNT, Cost, Price, Usage, cost_of, resolve_model_name
from pipeline.db.models import AIModel, AIModelPricing
from pipeline.stages.ai_models import price_at
from tests.analysis.statements import recorded_statements

#: After the effective_from (2024-01-01) of the prices migration 0002 stores.
AT = datetime(2025, 4, 30, 11, 38, 14, tzinfo=UTC)
SEEDED = ("gpt-4o", "gpt-4o-2024-08-06", "gpt-4-turbo", "gpt-4o-mini")


def price(
    db: Session, model: str, *, at: datetime = AT, batch: bool = False, eur_per_usd: float = 1.0
) -> Cost:
    return cost_of(Usage(1_000, 200), price_at(db, model, at), batch=batch, eur_per_usd=eur_per_usd)


@pytest.mark.parametrize(
    ("model", "prompt_unit", "completion_unit"),
    [
        ("gpt-4o", 0.0000025, 0.00001),
        ("gpt-4o-2024-08-06", 0.0000025, 0.00001),
        ("gpt-4-turbo", 0.00001, 0.00003),
        ("gpt-4o-mini", 0.00000015, 0.0000006),
    ],
)
def test_each_seeded_model_is_priced_per_token(
    db: Session, model: str, prompt_unit: float, completion_unit: float
) -> None:
    # When I price 1000 prompt and 200 completion tokens of a seeded model
    cost = price(db, model)

    # Then the unit prices are the seeded ones and the total is their sum over the tokens
    assert (cost.known, cost.model) == (True, model)
    assert (cost.prompt_unit_usd, cost.completion_unit_usd) == (prompt_unit, completion_unit)
    assert cost.total_usd == pytest.approx(1_000 * prompt_unit + 200 * completion_unit)
    assert cost.total_eur == cost.total_usd


@pytest.mark.parametrize(
    ("reported", "priced_as"),
    [
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
    ],
)
def test_a_dated_snapshot_is_priced_as_its_base_model(db: Session, reported: str, priced_as: str) -> None:
    # Given the dated snapshot name a response reports
    # When I price it
    cost = price(db, reported)

    # Then it is the priced model it is a snapshot of, unless it is a model of its own
    assert (cost.known, cost.model) == (True, priced_as)
    assert cost.prompt_unit_usd == price(db, priced_as).prompt_unit_usd


@pytest.mark.parametrize("model", ["gpt-5", "gpt-4o-20241120", "gpt-4o-2024-11-20-preview", "GPT-4O", ""])
def test_an_unknown_model_costs_nothing_and_says_so(db: Session, model: str) -> None:
    # Given a model name that is neither priced nor a dated snapshot of a priced model
    # When I price it
    cost = price(db, model)

    # Then it is unknown, at zero cost: never another model's rates
    assert cost == Cost(
        prompt_unit_usd=0.0, completion_unit_usd=0.0, total_usd=0.0, total_eur=0.0, known=False, model=None
    )


def test_a_model_without_a_price_at_the_time_is_unknown(db: Session) -> None:
    # Given an instant before the seeded prices took effect
    # When I price a seeded model then
    cost = price(db, "gpt-4o", at=datetime(2023, 12, 31, 23, 59, tzinfo=UTC))

    # Then it has no price
    assert (cost.known, cost.total_usd) == (False, 0.0)


def test_a_snapshot_that_is_a_model_of_its_own_is_not_priced_as_its_base(db: Session) -> None:
    # Given the snapshot model gpt-4o-2024-08-06, whose price ended, while gpt-4o's goes on
    seeded = db.scalars(select(AIModelPricing).join(AIModel).where(AIModel.name == "gpt-4o-2024-08-06")).one()
    seeded.effective_until = datetime(2025, 1, 1, tzinfo=UTC)
    db.flush()

    # When I price it after its price ended
    cost = price(db, "gpt-4o-2024-08-06")

    # Then it is unknown rather than priced as gpt-4o
    assert (cost.known, cost.model) == (False, None)


def test_a_batch_request_costs_half(db: Session) -> None:
    # When I price the same request synchronously and in a batch
    synchronous = price(db, "gpt-4o")
    batched = price(db, "gpt-4o", batch=True)

    # Then the batch unit prices and total are the synchronous ones times the Batch discount
    assert BATCH_DISCOUNT == 0.5
    assert batched.prompt_unit_usd == pytest.approx(synchronous.prompt_unit_usd * 0.5)
    assert batched.completion_unit_usd == pytest.approx(synchronous.completion_unit_usd * 0.5)
    assert batched.total_usd == pytest.approx(synchronous.total_usd * 0.5)
    assert batched.total_usd == pytest.approx(1_000 * 0.00000125 + 200 * 0.000005)


def test_the_total_is_converted_at_the_given_eur_rate(db: Session) -> None:
    # When I price a request at 0.92 EUR per USD
    cost = price(db, "gpt-4o", eur_per_usd=0.92)

    # Then the EUR total is the USD total at that rate
    assert cost.total_usd == pytest.approx(1_000 * 0.0000025 + 200 * 0.00001)
    assert cost.total_eur == pytest.approx(cost.total_usd * 0.92)


def test_the_price_valid_at_the_request_time_applies(db: Session) -> None:
    # Given gpt-4o's seeded price ends on 2025-06-01 and a new price starts then
    change = datetime(2025, 6, 1, tzinfo=UTC)
    model = db.scalars(select(AIModel).where(AIModel.name == "gpt-4o")).one()
    seeded = db.scalars(select(AIModelPricing).where(AIModelPricing.ai_model_id == model.id)).one()
    seeded.effective_until = change
    db.add(
        AIModelPricing(
            ai_model_id=model.id,
            prompt_token_cost=0.000002,
            completion_token_cost=0.000008,
            effective_from=change,
        )
    )
    db.flush()

    # When I price requests just before, at, and after the change, one of them in another time zone
    before = price(db, "gpt-4o", at=change - timedelta(microseconds=1))
    before_in_cest = price(db, "gpt-4o", at=datetime(2025, 6, 1, 1, 59, tzinfo=timezone(timedelta(hours=2))))
    at_change = price(db, "gpt-4o", at=change)
    after = price(db, "gpt-4o-2024-11-20", at=change + timedelta(days=30))

    # Then each gets the price valid at its instant: the old one until the change, the new one from it
    assert [cost.prompt_unit_usd for cost in (before, before_in_cest, at_change, after)] == [
        0.0000025,
        0.0000025,
        0.000002,
        0.000002,
    ]


def test_the_newest_overlapping_price_wins(db: Session) -> None:
    # Given a newer price for gpt-4o-mini that starts while the seeded one is still open-ended
    model = db.scalars(select(AIModel).where(AIModel.name == "gpt-4o-mini")).one()
    db.add(
        AIModelPricing(
            ai_model_id=model.id,
            prompt_token_cost=0.0000001,
            completion_token_cost=0.0000004,
            effective_from=datetime(2025, 1, 1, tzinfo=UTC),
        )
    )
    db.flush()

    # When I price a request after both took effect
    # Then the newer one applies
    assert price(db, "gpt-4o-mini").prompt_unit_usd == 0.0000001
    # And before the newer one, the seeded one
    assert price(db, "gpt-4o-mini", at=datetime(2024, 12, 31, tzinfo=UTC)).prompt_unit_usd == 0.00000015


def test_a_request_is_priced_in_one_query(db: Session) -> None:
    # Given a snapshot name, which has two candidate models
    # When I price it
    with recorded_statements(db) as statements:
        price(db, "gpt-4o-mini-2024-07-18")

    # Then the database was asked once
    assert len(statements) == 1


def test_negative_token_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        cost_of(Usage(-1, 0), Price("gpt-4o", 0.0000025, 0.00001), batch=False, eur_per_usd=1.0)


def test_the_cost_is_arithmetic_on_the_price_passed_in() -> None:
    # Given a price and a usage, no database at all
    price = Price("gpt-4o", prompt_usd=0.000002, completion_usd=0.000008)

    # When I cost 1000 prompt and 200 completion tokens in a batch at 0.9 EUR per USD
    cost = cost_of(Usage(1_000, 200), price, batch=True, eur_per_usd=0.9)

    # Then the units carry the Batch discount and the totals follow from them
    assert (cost.prompt_unit_usd, cost.completion_unit_usd) == (0.000001, 0.000004)
    assert cost.total_usd == pytest.approx(1_000 * 0.000001 + 200 * 0.000004)
    assert cost.total_eur == pytest.approx(cost.total_usd * 0.9)
    assert (cost.known, cost.model) == (True, "gpt-4o")
    # And no price means zero, said so
    assert cost_of(Usage(1_000, 200), None, batch=True, eur_per_usd=0.9).known is False


def test_a_name_resolves_exactly_first_then_as_a_dated_snapshot() -> None:
    known = {"gpt-4o", "gpt-4o-mini", "gpt-4o-2024-08-06"}

    # An exact name is itself, even when it looks like a snapshot
    assert resolve_model_name("gpt-4o-2024-08-06", known) == "gpt-4o-2024-08-06"
    # A dated snapshot is its base
    assert resolve_model_name("gpt-4o-2024-11-20", known) == "gpt-4o"
    assert resolve_model_name("gpt-4o-mini-2024-07-18", known) == "gpt-4o-mini"
    # Nothing else is guessed from a prefix
    assert resolve_model_name("gpt-4o-mini-2024-07-18", {"gpt-4o"}) is None
    assert resolve_model_name("gpt-4o-mini", {"gpt-4o"}) is None
    assert resolve_model_name("gpt-4o-20241120", known) is None
    assert resolve_model_name("gpt-4o-2024-11-20", set()) is None
