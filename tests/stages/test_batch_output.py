"""The ingest's fast path for an output line gives what the general path gives, or leaves the line to it.

The general path is the one the ingest always had: the line parsed, then ``ChatCompletion.model_validate``
and the answer validated from the message's text. No database: the lines are read and checked only.
"""

from __future__ import annotations

import copy
import json
import typing
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice as ChatCompletionChoice
from openai.types.completion_usage import CompletionTokensDetails, CompletionUsage, PromptTokensDetails
from pydantic import BaseModel
from pydantic_core import from_json

from pipeline.stages import batch_output
from pipeline.stages.batch_ingest import OpenRequest, _read, _read_text

SESSION_ID = uuid.UUID("0f6c3c1e-7d1b-4c55-9f49-2f1f5f7a8b21")
REQUEST = OpenRequest(
    id=uuid.UUID("5a0d8c52-8d63-4b0e-9d0c-6f2b1c9f4e11"),
    session_id=SESSION_ID,
    model="gpt-4o-mini",
    requested_at=datetime(2026, 1, 5, 9, tzinfo=UTC),
    attempts=1,
    company_id=uuid.UUID("9e3b0b7e-61a2-4f1f-8f3e-2d7c9a1b5c33"),
    reserved_eur=Decimal(0),
    reserved_month=None,
    analysis_key=None,
    estimated_prompt_tokens=700,
)
MAX_QUESTION_CHARS = 500

ANSWER: dict[str, Any] = {
    "language": "en",
    "sentiment": "NEUTRAL",
    "escalated": False,
    "forwarded_hr": False,
    "category": "LEAVE_VACATION",
    "questions": ["How many days off do I have left?", "  how many days off do I have left? "],
    "summary": "The user asked about their leave balance.",
    "session_id": str(SESSION_ID),
}

#: An output line as OpenAI (and the emulator) writes it for an answered request, with the optional fields of
#: the SDK's models that it leaves out given as null: every field the SDK checks is there to be edited.
LINE: dict[str, Any] = {
    "id": "batch_req_1",
    "custom_id": str(REQUEST.id),
    "response": {
        "status_code": 200,
        "request_id": "req_1",
        "body": {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1767603600,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": json.dumps(ANSWER),
                        "refusal": None,
                        "annotations": [],
                        "audio": None,
                        "function_call": None,
                        "tool_calls": None,
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 700,
                "completion_tokens": 91,
                "total_tokens": 791,
                "prompt_tokens_details": {
                    "cached_tokens": 64,
                    "audio_tokens": 0,
                    "cache_write_tokens": None,
                    "image_tokens": None,
                    "text_tokens": None,
                },
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                    "text_tokens": None,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_1",
            "metadata": None,
            "moderation": None,
        },
    },
    "error": None,
}


def _general_way(text: str) -> Any:
    """What the ingest did with a line before it had the fast path."""
    line = from_json(text)
    request = {str(REQUEST.id): REQUEST}.get(str(line.get("custom_id")))
    return None if request is None else _read(request, line, MAX_QUESTION_CHARS)


def _outcome(read: Any) -> Any:
    """A result, or the type of what it raised: both paths must raise alike too."""
    try:
        return read()
    except Exception as exc:
        return type(exc)


def _both_ways(text: str) -> tuple[Any, Any]:
    return (
        _outcome(lambda: _read_text(text, {str(REQUEST.id): REQUEST}, MAX_QUESTION_CHARS)),
        _outcome(lambda: _general_way(text)),
    )


def test_an_answered_line_takes_the_fast_path_and_reads_as_before() -> None:
    # Given the usual output line
    text = json.dumps(LINE)

    # When it is read
    fast, general = _both_ways(text)

    # Then the fast path took it, and gave what the general path gives: usage, and the answer to apply
    assert batch_output.answered_line(text) is not None
    assert fast == general
    assert fast.usage[:7] == ("chatcmpl-1", "default", "fp_1", 700, 91, 791, 64)
    assert fast.outcome.questions == ("How many days off do I have left?",)


_GONE = object()
_BODY = ("response", "body")
_MESSAGE = (*_BODY, "choices", 0, "message")
_USAGE = (*_BODY, "usage")


@pytest.mark.parametrize(
    ("path", "value", "fast", "outcome"),
    [
        # A refusal, on the fast path
        ((*_MESSAGE, "content"), None, True, "invalid answer: no content"),
        ((*_MESSAGE, "refusal"), "I can't help with that.", True, "invalid answer: model refused: I can't"),
        # No choice at all: nothing to read; no choices field: not a chat completion
        ((*_BODY, "choices"), [], True, "invalid answer: no content"),
        ((*_BODY, "choices"), _GONE, False, "unreadable completion: Field required"),
        # A wrong type in the usage: what the SDK refuses is refused, what it converts is converted
        ((*_USAGE, "prompt_tokens"), "many", False, "unreadable completion: Input should be a valid integer"),
        ((*_USAGE, "prompt_tokens"), "700", False, None),
        ((*_USAGE, "prompt_tokens_details"), None, True, None),
        (_USAGE, _GONE, True, None),
        # An answer that fails its schema: explained by the general path
        ((*_MESSAGE, "content"), '{"language": "english"}', False, "invalid answer: language:"),
        # Fields the ingest has no use for, when not empty, and an error status
        ((*_MESSAGE, "annotations"), [{"type": "url_citation"}], False, "unreadable completion: Field"),
        ((*_BODY, "choices", 0, "logprobs"), {"content": None, "refusal": None}, False, None),
        (("response", "status_code"), 500, False, "HTTP 500: no error message"),
        (("error",), {"code": "expired", "message": "too late"}, False, "expired: too late"),
        # Keys the SDK does not know are ignored by both
        ((*_BODY, "unknown"), {"any": "thing"}, True, None),
    ],
)
def test_a_line_reads_the_same_on_either_path(
    path: tuple[str | int, ...], value: Any, fast: bool, outcome: str | None
) -> None:
    # Given an output line with one field changed
    text = _with_edits([(path, value)])

    # When it is read
    read, general = _both_ways(text)

    # Then it took the path expected, and reads as the general path reads it: the answer, or why not
    assert (batch_output.answered_line(text) is not None) == fast
    assert read == general
    if outcome is None:
        assert not isinstance(read.outcome, str)
    else:
        assert read.outcome.startswith(outcome)


#: Values put in place of a field: what the SDK may convert, refuse or ignore, and ``_GONE`` (removed).
_VALUES = [_GONE, None, True, 0, 5, 5.0, "5", "", "x", [], {}, [None], {"x": 1}, 200, 10**30, 1e30]


def _paths(node: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every key and item of ``node``, and one key it does not have, each as a path from the top."""
    if isinstance(node, dict):
        keys: list[str | int] = [*node, "unknown"]
    elif isinstance(node, list):
        keys = list(range(len(node)))
    else:
        return []
    found = []
    for key in keys:
        found.append((*path, key))
        if key != "unknown":
            found += _paths(node[key], (*path, key))
    return found


def _with_edits(edits: list[tuple[tuple[str | int, ...], Any]]) -> str:
    """``LINE`` as JSON with values replaced, removed or added; an edit below one done before is skipped."""
    line = copy.deepcopy(LINE)
    for path, value in edits:
        parent: Any = line
        try:
            for key in path[:-1]:
                parent = parent[key]
            if value is _GONE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return json.dumps(line)


def test_a_line_with_any_one_field_changed_reads_the_same_on_either_path() -> None:
    # Given output lines with one field replaced by each of the values, or removed, or added, for every field
    lines = [_with_edits([(path, value)]) for path in _paths(LINE) for value in _VALUES]

    # When each is read
    # Then the ingest reads it as the general path does: the same answer, usage and reason, or the same error
    assert [text for text in lines if _both_ways(text)[0] != _both_ways(text)[1]] == []


@settings(max_examples=500, deadline=None, database=None)
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(_paths(LINE)), st.sampled_from(_VALUES) | st.text(max_size=5)),
        min_size=2,
        max_size=4,
    )
)
def test_a_line_with_several_fields_changed_reads_the_same_on_either_path(
    edits: list[tuple[tuple[str | int, ...], Any]],
) -> None:
    # Given an output line with a few fields replaced, removed or added, wherever they are
    text = _with_edits(edits)

    # When it is read
    fast, general = _both_ways(text)

    # Then the ingest reads it as the general path does
    assert fast == general


_MIRRORED: list[tuple[type[BaseModel], Any]] = [
    (ChatCompletion, batch_output.Completion),
    (ChatCompletionChoice, batch_output.Choice),
    (ChatCompletionMessage, batch_output.Message),
    (CompletionUsage, batch_output.CompletionUsage),
    (PromptTokensDetails, batch_output.PromptTokensDetails),
    (CompletionTokensDetails, batch_output.CompletionTokensDetails),
]


@pytest.mark.parametrize(("model", "mirror"), _MIRRORED, ids=[model.__name__ for model, _ in _MIRRORED])
def test_the_fast_path_knows_every_field_of_the_sdk_models(model: type[BaseModel], mirror: Any) -> None:
    # Given one of the SDK's models the general path validates, and the fast path's class for it
    # When their fields are compared (an upgrade of the openai SDK may add some)
    # Then the fast path names every field: one it did not know it would ignore, where the SDK checks it
    assert set(typing.get_type_hints(mirror)) == set(model.model_fields)
    for name, field in model.model_fields.items():
        if typing.get_origin(field.annotation) is typing.Literal or any(
            typing.get_origin(arg) is typing.Literal for arg in typing.get_args(field.annotation)
        ):
            # And the values a literal field takes are the SDK's
            assert _literals(typing.get_type_hints(mirror)[name]) == _literals(field.annotation)


def _literals(annotation: Any) -> set[Any]:
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    return {value for arg in typing.get_args(annotation) for value in _literals(arg)}
