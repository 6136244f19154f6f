"""What a request reserves before it is sent, and what identifies an analysis: pure functions, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from pipeline.analysis import (
    MAX_TOKENS,
    Price,
    PromptMessage,
    Usage,
    analysis_key,
    cost_of,
    estimate_prompt_tokens,
    fit_transcript,
    request_body,
    worst_case_eur,
)
from pipeline.analysis import prompt as prompt_module
from pipeline.devtools.openai_emulator.completions import tokens_of

AT = datetime(2025, 4, 30, 11, 38, 14, tzinfo=UTC)
GPT_4O = Price("gpt-4o", 0.0000025, 0.00001)
SESSION = "0f6c3c1e-7d1b-4c55-9f49-2f1f5f7a8b21"


def _body(*contents: str, model: str = "gpt-4o") -> dict[str, Any]:
    messages = [PromptMessage("user", content, AT) for content in contents]
    return request_body(model, SESSION, fit_transcript(messages, max_prompt_tokens=16_000))


@pytest.mark.parametrize("content", ["Hoi!", "x" * 10_000, "Üben, ünd Grüße " * 200])
def test_the_estimate_is_above_what_the_prompt_is_billed(content: str) -> None:
    # Given a request body, and what the emulator bills its prompt (four characters a token)
    body = _body(content)
    billed = tokens_of(sum(len(message["content"]) for message in body["messages"]))

    # When its prompt tokens are estimated
    # Then the estimate is above the bill: a reservation never falls short of the cost
    assert estimate_prompt_tokens(body) > billed


def test_the_worst_case_is_the_cost_of_the_estimate_and_every_completion_token_rounded_up() -> None:
    # Given 1,000 estimated prompt tokens at gpt-4o's price, synchronous and in a batch
    sync = worst_case_eur(1_000, MAX_TOKENS, GPT_4O, batch=False, eur_per_usd=0.85)
    batch = worst_case_eur(1_000, MAX_TOKENS, GPT_4O, batch=True, eur_per_usd=0.85)

    # Then it is the cost of those tokens and MAX_TOKENS of completion, in exact decimals, at least the cost
    exact = cost_of(Usage(1_000, MAX_TOKENS), GPT_4O, batch=False, eur_per_usd=0.85).total_eur
    assert sync == Decimal("0.010625000") and float(sync) >= exact
    assert batch == Decimal("0.005312500")
    # And a model without a price reserves nothing (its answers are recorded at zero)
    assert worst_case_eur(1_000, MAX_TOKENS, None, batch=False, eur_per_usd=0.85) == 0


def test_the_same_question_has_the_same_key_and_any_change_another() -> None:
    key = analysis_key(_body("When is my schedule online?"))

    assert analysis_key(_body("When is my schedule online?")) == key
    assert analysis_key(_body("When is my holiday approved?")) != key
    assert analysis_key(_body("When is my schedule online?", model="gpt-4o-mini")) != key


def test_a_new_prompt_version_gives_another_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = analysis_key(_body("When is my schedule online?"))
    monkeypatch.setattr(prompt_module, "PROMPT_VERSION", prompt_module.PROMPT_VERSION + 1)
    assert analysis_key(_body("When is my schedule online?")) != key
