"""Chat completion bodies, in the shape of ``openai.types.chat.ChatCompletion``, with the emulator's answer.

Tokens are estimated as a quarter of the characters, rounded up: of all message contents for the prompt, of
the answer for the completion. A request over its ``max_tokens`` gets its answer cut off there, with
``finish_reason`` ``length``, as the real API does.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.devtools.openai_emulator import ids
from pipeline.devtools.openai_emulator.analyst import analyse_conversation
from pipeline.devtools.openai_emulator.knobs import AnswerFault, Knobs
from pipeline.devtools.openai_emulator.schemas import ChatCompletionRequest

__all__ = ["MODEL_SNAPSHOTS", "REFUSAL", "Completion", "complete", "tokens_of"]

#: Aliases the real API answers with a dated snapshot (the ``model`` of its response).
MODEL_SNAPSHOTS: Mapping[str, str] = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
}
REFUSAL = "I'm sorry, but I can't help with that request."
_CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class Completion:
    """A chat completion body and what billing needs to know of it.

    ``session_id`` is the one the conversation carries, not what the answer claims (see ``wrong_session_id``).
    """

    body: dict[str, object]
    session_id: str | None
    model: str
    prompt_tokens: int
    completion_tokens: int


def complete(
    request: ChatCompletionRequest, knobs: Knobs, now: float, forced: AnswerFault | None = None
) -> Completion:
    """Answer ``request``; ``forced`` (from a request header) beats the knobs' answer faults."""
    analysis = analyse_conversation(request.conversation)
    session_id = str(analysis["session_id"]) or None
    fault = forced or knobs.answer_fault_for(session_id)
    content: str | None = _content(analysis, fault)
    refusal = REFUSAL if fault == "refusal" else None
    answered = content if content is not None else refusal or ""
    completion_tokens = tokens_of(len(answered))
    finish_reason = "stop"
    limit = request.token_limit
    if content is not None and limit is not None and completion_tokens > limit:
        content, completion_tokens, finish_reason = content[: limit * _CHARS_PER_TOKEN], limit, "length"
    prompt_tokens = tokens_of(request.prompt_chars)
    model = MODEL_SNAPSHOTS.get(request.model, request.model)
    body: dict[str, object] = {
        "id": ids.chat_completion_id(),
        "object": "chat.completion",
        "created": int(now),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal, "annotations": []},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10],
    }
    return Completion(body, session_id, model, prompt_tokens, completion_tokens)


def _content(analysis: dict[str, object], fault: AnswerFault | None) -> str | None:
    match fault:
        case "refusal":
            return None
        case "invalid_json":
            # What an answer cut off mid-way looks like.
            text = _json(analysis)
            return text[: len(text) // 2]
        case "schema_violation":
            broken = {key: value for key, value in analysis.items() if key != "summary"}
            return _json({**broken, "sentiment": "MIXED"})
        case "wrong_session_id":
            # Well-formed, deterministic, and never the session asked about.
            other = str(uuid.uuid5(uuid.NAMESPACE_URL, f"wrong:{analysis['session_id']}"))
            return _json({**analysis, "session_id": other})
        case None:
            return _json(analysis)


def _json(value: dict[str, object]) -> str:
    return json.dumps(value, ensure_ascii=False)


def tokens_of(chars: int) -> int:
    return math.ceil(chars / _CHARS_PER_TOKEN)
