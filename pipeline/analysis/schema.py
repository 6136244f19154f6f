"""The analysis contract: what the model must answer for one session, and how an answer is checked.

One pydantic model, :class:`SessionAnalysis`, serves both the synchronous path and the Batch path
(``docs/session-analysis.md``): it produces the Structured Outputs schema sent with every
request (:data:`RESPONSE_FORMAT`) and it validates every answer (:func:`parse_analysis`). The openai SDK
validates nothing it receives, so no answer reaches the database without passing through here.

Choices made here:

* The model is strict: ``"true"`` is not a boolean and ``1`` is not a string. What the schema promises is
  exactly what is accepted.
* OpenAI's strict mode rejects ``minLength``/``maxLength``, which pydantic emits for the summary. They are
  dropped from the schema sent, the summary's description states the bound in words, and
  :class:`SessionAnalysis` still enforces it on the answer. ``pattern`` and ``maxItems`` are supported and
  kept.
* Enum references (``$ref``) are inlined and the titles dropped, so the schema sent is one self-contained
  object with nothing the model does not need. (The SDK inlines a reference only when the field has a
  description, and leaves ``$defs`` behind either way.)
* The session id must be echoed exactly: an answer about another session is never applied to this one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Annotated, Final, TypeVar

from openai import Omit
from openai.lib import type_to_response_format_param
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from pipeline.db.enums import SentimentCategory, SessionCategory
from pipeline.errors import PermanentError

__all__ = [
    "MAX_QUESTIONS",
    "RESPONSE_FORMAT",
    "SCHEMA_VERSION",
    "SUMMARY_MAX_CHARS",
    "SUMMARY_MIN_CHARS",
    "InvalidAnalysis",
    "SessionAnalysis",
    "checked_analysis",
    "normalized_questions",
    "parse_analysis",
]

#: Raised whenever the answer's schema changes: part of an analysis's key, so a new schema analyses again.
SCHEMA_VERSION: Final = 1
#: The most questions one answer may list.
MAX_QUESTIONS: Final = 5
#: Bounds of the summary's length, in characters, both inclusive.
SUMMARY_MIN_CHARS: Final = 10
SUMMARY_MAX_CHARS: Final = 300

#: Keywords the SDK emits that strict mode refuses (``minLength``, ``maxLength``), that tell the model
#: nothing (``title``: pydantic derives it from the field name), or that inlining makes useless.
_DROPPED_KEYWORDS = frozenset({"minLength", "maxLength", "title", "$ref", "$defs"})
#: Most validation errors listed in one reason; the rest are counted.
_MAX_LISTED_ERRORS = 5
#: Longest rendering of a wrong value in a reason (a UUID is 36 characters).
_MAX_SHOWN_CHARS = 40
#: A message's content: its text, or the analysis already validated from it.
_Content = TypeVar("_Content", str, "SessionAnalysis")


def _not_blank(question: str) -> str:
    if not question.strip():
        raise PydanticCustomError("blank_question", "must not be blank")
    return question


# The docstring and the field descriptions are sent to the model with the schema: write them for it.
class SessionAnalysis(BaseModel):
    """The analysis of one chat session."""

    model_config = ConfigDict(extra="forbid", strict=True)

    language: str = Field(
        pattern=r"^[a-z]{2}$",
        description='The user\'s main language as an ISO 639-1 code: two lower-case letters, e.g. "en".',
    )
    sentiment: SentimentCategory = Field(description="The overall tone of the conversation.")
    escalated: bool = Field(
        description="Whether the user asked for, or was escalated to, a supervisor or manager."
    )
    forwarded_hr: bool = Field(description="Whether an HR contact was mentioned or provided.")
    category: SessionCategory = Field(description="The category that fits the conversation best.")
    questions: list[Annotated[str, AfterValidator(_not_blank)]] = Field(
        max_length=MAX_QUESTIONS,
        description=f"At most {MAX_QUESTIONS} questions the user asked, each paraphrased in English.",
    )
    summary: str = Field(
        min_length=SUMMARY_MIN_CHARS,
        max_length=SUMMARY_MAX_CHARS,
        description=f"A summary of the conversation, {SUMMARY_MIN_CHARS} to {SUMMARY_MAX_CHARS} characters.",
    )
    session_id: str = Field(description="The session id given with the conversation, copied exactly.")


def _strict_subset(node: object, definitions: Mapping[str, object]) -> object:
    """A copy of a schema node with references inlined and the dropped keywords removed."""
    if isinstance(node, list):
        return [_strict_subset(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref")
    if isinstance(reference, str):
        # Pydantic emits local references only ("#/$defs/<Name>"); the node's own keys beat the definition's.
        target = definitions[reference.removeprefix("#/$defs/")]
        if not isinstance(target, dict):
            raise TypeError(f"{reference} is not a schema object")
        node = {**target, **node}
    return {
        key: _strict_subset(value, definitions) for key, value in node.items() if key not in _DROPPED_KEYWORDS
    }


def _response_format() -> ResponseFormatJSONSchema:
    built = type_to_response_format_param(SessionAnalysis)
    if isinstance(built, Omit) or built["type"] != "json_schema":
        raise TypeError(f"the openai SDK built an unexpected response format: {built!r}")
    schema = built["json_schema"]["schema"]
    definitions = schema.get("$defs", {})
    if not isinstance(definitions, dict):
        raise TypeError(f"the openai SDK built unexpected $defs: {definitions!r}")
    strict_schema = _strict_subset(schema, definitions)
    if not isinstance(strict_schema, dict):
        raise TypeError(f"the schema of {SessionAnalysis.__name__} is not an object")
    return {
        "type": "json_schema",
        "json_schema": {"name": "session_analysis", "schema": strict_schema, "strict": True},
    }


#: The ``response_format`` of every analysis request, synchronous or in a batch. Treat it as read-only.
RESPONSE_FORMAT: Final[ResponseFormatJSONSchema] = _response_format()


class InvalidAnalysis(PermanentError, ValueError):
    """An answer that cannot be used; ``reason`` says why in a few words, fit for an error column."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_analysis(content: str | None, *, refusal: str | None, expected_session_id: str) -> SessionAnalysis:
    """The validated analysis in a completion's message ``content``.

    Raises :class:`InvalidAnalysis` for a refusal, a missing or malformed answer, or an answer about
    another session than ``expected_session_id``.
    """
    try:
        analysis = SessionAnalysis.model_validate_json(_answer_in(content, refusal))
    except ValidationError as error:
        raise InvalidAnalysis(_explain(error.errors(include_url=False))) from error
    return _for_session(analysis, expected_session_id)


def checked_analysis(
    analysis: SessionAnalysis | None, *, refusal: str | None, expected_session_id: str
) -> SessionAnalysis:
    """What :func:`parse_analysis` gives for a message whose content was validated already (``None``: none).

    For a reader that validated the content as :class:`SessionAnalysis` in the same pass as the rest of the
    completion (``Json[SessionAnalysis]``); a content that fails is for :func:`parse_analysis` to explain.
    """
    return _for_session(_answer_in(analysis, refusal), expected_session_id)


def _answer_in(content: _Content | None, refusal: str | None) -> _Content:
    """``content``; raises :class:`InvalidAnalysis` for a refusal, then for a message without content."""
    if refusal:
        raise InvalidAnalysis(f"model refused: {refusal}")
    if content is None:
        raise InvalidAnalysis("no content")
    return content


def _for_session(analysis: SessionAnalysis, expected_session_id: str) -> SessionAnalysis:
    if analysis.session_id != expected_session_id:
        raise InvalidAnalysis(
            f"answer is for session {_clip(analysis.session_id)}, expected {expected_session_id}"
        )
    return analysis


def normalized_questions(analysis: SessionAnalysis, *, max_chars: int) -> list[str]:
    """The questions to store: stripped, cut to ``max_chars``, without blanks or case-insensitive repeats,
    first spelling kept.

    A question may be stored once per session: ``session_question`` is unique per (session, question). A
    question longer than ``max_chars`` is cut and ends in ``…`` (counted in ``max_chars``): the unique index
    on ``question.content`` refuses a text of more than about 2,700 bytes, and one refused question would
    fail every answer written with it.
    """
    seen: set[str] = set()
    questions: list[str] = []
    for question in analysis.questions:
        text = question.strip()
        if len(text) > max_chars:
            text = text[: max_chars - 1].rstrip() + "…"
        key = text.casefold()
        if text and key not in seen:
            seen.add(key)
            questions.append(text)
    return questions[:MAX_QUESTIONS]


_CHOICES: Final[Mapping[str, str]] = {
    name: ", ".join(member.value for member in field.annotation)
    for name, field in SessionAnalysis.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, Enum)
}


def _explain(errors: Sequence[ErrorDetails]) -> str:
    reasons = [_describe(error) for error in errors[:_MAX_LISTED_ERRORS]]
    if len(errors) > _MAX_LISTED_ERRORS:
        reasons.append(f"and {len(errors) - _MAX_LISTED_ERRORS} more problems")
    return "; ".join(reasons)


def _describe(error: ErrorDetails) -> str:
    # Clipped: an answer's own keys are arbitrary, and a reason goes into an error column.
    where = _clip(_location(error["loc"]))
    value = error["input"]
    context = error.get("ctx", {})
    match error["type"]:
        case "json_invalid":
            return f"invalid JSON: {context['error']}"
        case "model_type":
            return "answer is not a JSON object"
        case "missing":
            return f"{where}: missing"
        case "extra_forbidden":
            return f"{where}: unexpected field"
        case "enum":
            return f"{where}: {_shorten(value)} is not one of {_CHOICES[where]}"
        case "string_pattern_mismatch":
            return f"{where}: {_shorten(value)} does not match {context['pattern']}"
        case "string_too_short":
            return f"{where}: {len(value)} characters, at least {context['min_length']} required"
        case "string_too_long":
            return f"{where}: {len(value)} characters, at most {context['max_length']} allowed"
        case "too_long":
            return f"{where}: {context['actual_length']} items, at most {context['max_length']} allowed"
        case _:
            return f"{where}: {error['msg'][:1].lower()}{error['msg'][1:]}, got {_shorten(value)}"


def _location(loc: tuple[int | str, ...]) -> str:
    """``questions[2]`` for ``("questions", 2)``; the whole answer for ``()``."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    return text or "answer"


def _shorten(value: object) -> str:
    return _clip(repr(value))


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN_CHARS else text[: _MAX_SHOWN_CHARS - 3] + "..."
