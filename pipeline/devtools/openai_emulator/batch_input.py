"""Checking a Batch input file the way the API does before it accepts a batch, line by line.

Every problem is a 400 naming the first offending line (counted from 1, blank lines included).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from pipeline.devtools.openai_emulator.errors import ApiError
from pipeline.devtools.openai_emulator.schemas import ChatCompletionRequest

__all__ = ["MAX_REQUESTS", "BatchInput", "BatchLine", "describe_validation_error", "parse_batch_input"]

#: Requests per input file the Batch API takes.
MAX_REQUESTS = 50_000


@dataclass(frozen=True, slots=True)
class BatchLine:
    custom_id: str
    request: ChatCompletionRequest


@dataclass(frozen=True, slots=True)
class BatchInput:
    """A valid input file: its one model, and its requests in file order."""

    model: str
    lines: list[BatchLine]


class _Envelope(BaseModel):
    custom_id: str = Field(min_length=1)
    method: Literal["POST"]
    url: str
    body: ChatCompletionRequest


def parse_batch_input(data: bytes, endpoint: str) -> BatchInput:
    """The requests in ``data``, or ApiError 400 for the first thing the API would reject."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("The input file is not UTF-8 encoded JSONL.", "invalid_file_format") from None
    numbered = [(number, line) for number, line in enumerate(text.split("\n"), start=1) if line.strip()]
    if not numbered:
        raise _invalid("The input file contains no requests.", "empty_file")
    if len(numbered) > MAX_REQUESTS:
        raise _invalid(
            f"The input file has {len(numbered):,} requests; a batch takes at most {MAX_REQUESTS:,}.",
            "too_many_requests_in_file",
        )
    lines: list[BatchLine] = []
    seen: set[str] = set()
    model = ""
    for number, raw in numbered:
        line = _parse_line(number, raw, endpoint)
        if line.custom_id in seen:
            raise _invalid(
                f"Line {number}: the custom_id {line.custom_id!r} is used twice.", "duplicate_custom_id"
            )
        if model and line.request.model != model:
            raise _invalid(
                f"Line {number}: the model {line.request.model!r} differs from {model!r}; "
                "a batch input file may use only one model.",
                "mismatched_model",
            )
        seen.add(line.custom_id)
        model = line.request.model
        lines.append(line)
    return BatchInput(model, lines)


def describe_validation_error(error: ValidationError) -> tuple[str, str]:
    """Where the first problem is (dotted path) and what it is, for messages in the API's style."""
    first = error.errors()[0]
    return ".".join(str(part) for part in first["loc"]), first["msg"]


def _parse_line(number: int, raw: str, endpoint: str) -> BatchLine:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _invalid(f"Line {number} is not valid JSON: {exc.msg}.", "invalid_json_line") from None
    try:
        envelope = _Envelope.model_validate(value)
    except ValidationError as exc:
        where, what = describe_validation_error(exc)
        raise _invalid(f"Line {number}: {where or 'line'}: {what}.", "invalid_request") from None
    if envelope.url != endpoint:
        raise _invalid(
            f"Line {number}: the url {envelope.url!r} does not match the batch's endpoint {endpoint!r}.",
            "invalid_url",
        )
    return BatchLine(envelope.custom_id, envelope.body)


def _invalid(message: str, code: str) -> ApiError:
    return ApiError(400, message, code=code, param="input_file_id")
