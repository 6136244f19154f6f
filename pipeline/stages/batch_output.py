"""The usual line of a batch's output file, checked in one pass from its text: the ingest's fast path.

Nearly every line of an output file answers its request: status 200, no error, a chat completion as OpenAI
sends it. :func:`answered_line` validates such a line straight from its JSON text with pydantic-core, into
plain dicts of the fields a chat completion has, instead of parsing the JSON into Python objects and then
validating the SDK's ``ChatCompletion`` models from them: the two passes, and the models, were most of the
CPU the ingest spent on a line besides its writes.

It is a shortcut, never a second set of rules: it accepts only lines that the general path of
:mod:`pipeline.stages.batch_ingest` (the parsed JSON, then ``ChatCompletion.model_validate``) accepts too,
and gives the same values. Every field that the SDK's models check is checked here at least as strictly
(strict types: ``"5"`` is not 5, as the SDK would have it), the fields the ingest does not use are accepted
only when absent or null (``annotations`` when empty), and keys the SDK does not know are ignored, as the
SDK's models ignore them. Any other line gets ``None``: the general path reads it and records what it
always did, an error line's message or why its completion could not be read.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, Json, TypeAdapter, ValidationError, with_config
from typing_extensions import NotRequired, TypedDict  # noqa: UP035  pydantic needs it below 3.12

from pipeline.analysis import SessionAnalysis

__all__ = ["AnsweredLine", "Completion", "answered_line", "message_of", "usage_of"]

_STRICT = ConfigDict(strict=True)
#: A list that must be empty: a message's ``annotations`` the ingest has no use for.
_Empty = Annotated[list[None], Field(max_length=0)]


# Each class names every field of its SDK model (tests/stages/test_batch_output.py holds them to that).
@with_config(_STRICT)
class PromptTokensDetails(TypedDict, total=False):
    """``openai.types.completion_usage.PromptTokensDetails``."""

    audio_tokens: int | None
    cache_write_tokens: int | None
    cached_tokens: int | None
    image_tokens: int | None
    text_tokens: int | None


@with_config(_STRICT)
class CompletionTokensDetails(TypedDict, total=False):
    """``openai.types.completion_usage.CompletionTokensDetails``."""

    accepted_prediction_tokens: int | None
    audio_tokens: int | None
    reasoning_tokens: int | None
    rejected_prediction_tokens: int | None
    text_tokens: int | None


@with_config(_STRICT)
class CompletionUsage(TypedDict):
    """``openai.types.completion_usage.CompletionUsage``."""

    completion_tokens: int
    prompt_tokens: int
    total_tokens: int
    completion_tokens_details: NotRequired[CompletionTokensDetails | None]
    prompt_tokens_details: NotRequired[PromptTokensDetails | None]


@with_config(_STRICT)
class Message(TypedDict):
    """``openai.types.chat.ChatCompletionMessage``: its answer or refusal; no audio, no calls.

    The answer in ``content`` is validated as :class:`SessionAnalysis` in the same pass, from the same text
    (the SDK types ``content`` as text): a content that fails is for the general path to explain.
    """

    role: Literal["assistant"]
    content: NotRequired[Json[SessionAnalysis] | None]
    refusal: NotRequired[str | None]
    annotations: NotRequired[_Empty | None]
    audio: NotRequired[None]
    function_call: NotRequired[None]
    tool_calls: NotRequired[None]


@with_config(_STRICT)
class Choice(TypedDict):
    """``openai.types.chat.chat_completion.Choice``, without log probabilities."""

    finish_reason: Literal["stop", "length", "tool_calls", "content_filter", "function_call"]
    index: int
    logprobs: NotRequired[None]
    message: Message


@with_config(_STRICT)
class Completion(TypedDict):
    """``openai.types.chat.ChatCompletion``, without moderation results."""

    id: str
    choices: list[Choice]
    created: int
    model: str
    object: Literal["chat.completion"]
    metadata: NotRequired[dict[str, str] | None]
    moderation: NotRequired[None]
    service_tier: NotRequired[Literal["auto", "default", "flex", "scale", "priority", "fast"] | None]
    system_fingerprint: NotRequired[str | None]
    usage: NotRequired[CompletionUsage | None]


@with_config(_STRICT)
class Response(TypedDict):
    """A line's response: 200 (the general path reads every other status)."""

    status_code: Literal[200]
    request_id: NotRequired[str | None]
    body: Completion


@with_config(_STRICT)
class AnsweredLine(TypedDict):
    """An output line that answered its request, without an ``error``."""

    custom_id: str
    response: Response
    error: NotRequired[None]


_ANSWERED: TypeAdapter[AnsweredLine] = TypeAdapter(AnsweredLine)


def answered_line(text: str) -> AnsweredLine | None:
    """``text`` as an answered line, checked; ``None``: not one (or not valid JSON), for the general path."""
    try:
        return _ANSWERED.validate_json(text)
    except ValidationError:
        return None


def message_of(completion: Completion) -> tuple[SessionAnalysis | None, str | None]:
    """What ``analysis_results.first_message`` gives for the same completion, with the content validated:
    the analysis and refusal of the first choice's message, both ``None`` without a choice."""
    if not completion["choices"]:
        return None, None
    message = completion["choices"][0]["message"]
    return message.get("content"), message.get("refusal")


def usage_of(completion: Completion) -> tuple[Any, ...]:
    """The values ``analysis_results.usage_values`` gives for the same completion (``USAGE_COLUMNS``)."""
    usage = completion.get("usage")
    called = (completion["id"], completion.get("service_tier"), completion.get("system_fingerprint"))
    if usage is None:
        return (*called, 0, 0, 0, *[None] * 6)
    prompt: PromptTokensDetails = usage.get("prompt_tokens_details") or {}
    answer: CompletionTokensDetails = usage.get("completion_tokens_details") or {}
    # A detail of 0 is stored as NULL, as by usage_values: "not reported" and "none used" read the same.
    return (
        *called,
        usage["prompt_tokens"],
        usage["completion_tokens"],
        usage["total_tokens"],
        prompt.get("cached_tokens") or None,
        prompt.get("audio_tokens") or None,
        answer.get("reasoning_tokens") or None,
        answer.get("audio_tokens") or None,
        answer.get("accepted_prediction_tokens") or None,
        answer.get("rejected_prediction_tokens") or None,
    )
