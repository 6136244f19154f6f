"""AI analysis of chat sessions: the contract both the synchronous and the Batch path share.

* :mod:`~pipeline.analysis.schema`: the answer the model must give, the schema sent, the validation.
* :mod:`~pipeline.analysis.prompt`: the instructions, the transcript and the request body.
* :mod:`~pipeline.analysis.pricing`: what a request cost, from the model prices in the database.
* :mod:`~pipeline.analysis.model_choice`: which model analyses a company's sessions.
"""

from __future__ import annotations

from pipeline.analysis.model_choice import choose_model
from pipeline.analysis.pricing import BATCH_DISCOUNT, Cost, price_request, resolve_model_name
from pipeline.analysis.prompt import (
    CATEGORY_GUIDE,
    MAX_TOKENS,
    SYSTEM_PROMPT,
    TEMPERATURE,
    PromptMessage,
    build_messages,
    request_body,
)
from pipeline.analysis.schema import (
    MAX_QUESTIONS,
    RESPONSE_FORMAT,
    SUMMARY_MAX_CHARS,
    SUMMARY_MIN_CHARS,
    InvalidAnalysis,
    SessionAnalysis,
    normalized_questions,
    parse_analysis,
)

__all__ = [
    "BATCH_DISCOUNT",
    "CATEGORY_GUIDE",
    "MAX_QUESTIONS",
    "MAX_TOKENS",
    "RESPONSE_FORMAT",
    "SUMMARY_MAX_CHARS",
    "SUMMARY_MIN_CHARS",
    "SYSTEM_PROMPT",
    "TEMPERATURE",
    "Cost",
    "InvalidAnalysis",
    "PromptMessage",
    "SessionAnalysis",
    "build_messages",
    "choose_model",
    "normalized_questions",
    "parse_analysis",
    "price_request",
    "request_body",
    "resolve_model_name",
]
