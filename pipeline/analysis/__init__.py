"""AI analysis of chat sessions: the contract both the synchronous and the Batch path share.

* :mod:`~pipeline.analysis.schema`: the answer the model must give, the schema sent, the validation.
* :mod:`~pipeline.analysis.prompt`: the instructions, the transcript and the request body.
* :mod:`~pipeline.analysis.pricing`: what a request cost, from its token counts and the model's prices.

Nothing here reads the database: prices and the model to use are looked up by the stages
(:mod:`pipeline.stages.ai_models`) and passed in.
"""

from __future__ import annotations

from pipeline.analysis.pricing import (
    BATCH_DISCOUNT,
    Cost,
    Price,
    Usage,
    cost_of,
    resolve_model_name,
    worst_case_eur,
)
from pipeline.analysis.prompt import (
    CATEGORY_GUIDE,
    MAX_TOKENS,
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    TEMPERATURE,
    FittedTranscript,
    PromptMessage,
    analysis_key,
    build_messages,
    estimate_prompt_tokens,
    estimated_tokens,
    fit_transcript,
    request_body,
)
from pipeline.analysis.schema import (
    MAX_QUESTIONS,
    RESPONSE_FORMAT,
    SCHEMA_VERSION,
    SUMMARY_MAX_CHARS,
    SUMMARY_MIN_CHARS,
    InvalidAnalysis,
    SessionAnalysis,
    checked_analysis,
    normalized_questions,
    parse_analysis,
)

__all__ = [
    "BATCH_DISCOUNT",
    "CATEGORY_GUIDE",
    "MAX_QUESTIONS",
    "MAX_TOKENS",
    "PROMPT_VERSION",
    "RESPONSE_FORMAT",
    "SCHEMA_VERSION",
    "SUMMARY_MAX_CHARS",
    "SUMMARY_MIN_CHARS",
    "SYSTEM_PROMPT",
    "TEMPERATURE",
    "Cost",
    "FittedTranscript",
    "InvalidAnalysis",
    "Price",
    "PromptMessage",
    "SessionAnalysis",
    "Usage",
    "analysis_key",
    "build_messages",
    "checked_analysis",
    "cost_of",
    "estimate_prompt_tokens",
    "estimated_tokens",
    "fit_transcript",
    "normalized_questions",
    "parse_analysis",
    "request_body",
    "resolve_model_name",
    "worst_case_eur",
]
