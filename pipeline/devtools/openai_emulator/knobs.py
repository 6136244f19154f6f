"""The emulator's knobs: latency, injected faults and batch timing, all changeable while it runs.

Rates are spread evenly instead of drawn at random, so a test can count on them: with ``rate_429=0.25``
exactly requests 4, 8, 12 ... of the emulator's chat completions are answered 429.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "OUTAGE_HANG_SECONDS",
    "AnswerFault",
    "BatchErrorStatus",
    "BatchOutcome",
    "Knobs",
    "Outage",
    "RequestFault",
    "evenly_selected",
    "share_of",
]

#: A 200 answer that is wrong in one way: cut-off JSON, JSON outside the schema, a refusal, or an answer that
#: echoes another session's id.
AnswerFault = Literal["invalid_json", "schema_violation", "refusal", "wrong_session_id"]
#: What the ``x-emulator-fault`` header of one chat completion may ask for: a wrong answer, or an HTTP error.
RequestFault = Literal[
    "invalid_json", "schema_violation", "refusal", "wrong_session_id", "rate_limit", "server_error"
]
BatchOutcome = Literal["completed", "failed", "expired", "cancelled"]
BatchErrorStatus = Literal[400, 429, 500]
#: The whole API down: every ``/v1`` request answered 500, or left hanging (then 504) past any client timeout.
Outage = Literal["server_error", "timeout"]

#: How long a request hangs during a ``timeout`` outage before the emulator gives up on it with a 504.
OUTAGE_HANG_SECONDS = 60.0


class Knobs(BaseModel):
    """How the emulator misbehaves. Assignments are validated, and take effect from the next request.

    Chat completions:
        latency: seconds every chat completion waits before it answers, errors included.
        rate_429, rate_500: share of chat completions answered 429 (with Retry-After) or 500, spread evenly
            over the emulator's count of valid chat completion requests; 429 wins where both pick one.
        retry_after: seconds the 429 answers ask the client to wait.

    Answers, both in chat completions and in batch output lines:
        answer_fault: a wrong answer for every request.
        session_faults: a wrong answer for the sessions named, by the session id in the conversation.

    The whole API:
        outage: every ``/v1`` request (chat, files, batches) answered 500 (``server_error``) or hanging for
            ``OUTAGE_HANG_SECONDS`` before a 504 (``timeout``); nothing is billed meanwhile.

    Batches (read when a batch reaches each step, so a running batch follows changes):
        validating_seconds, in_progress_seconds, finalizing_seconds, cancelling_seconds: phase durations.
        batch_outcome: how a batch ends once in_progress is over; ``failed`` ends it at validation instead.
        enqueued_token_limit: the organisation's enqueued-token limit per model (None: no limit). A batch
            whose prompt tokens, with those of the model's batches in progress, pass it fails at validation
            with ``token_limit_exceeded``, as OpenAI's do.
        partial_fraction: share of lines answered when a batch stops early (expired, cancelled): the first
            lines of the input file; the rest appear in neither output file.
        batch_error_fraction: share of the lines done, spread evenly over their input positions, that go to
            the error file with ``batch_error_status`` (400, 429 or 500) instead of being answered.
    """

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    latency: float = Field(default=0.0, ge=0)
    rate_429: float = Field(default=0.0, ge=0, le=1)
    rate_500: float = Field(default=0.0, ge=0, le=1)
    retry_after: float = Field(default=1.0, ge=0)
    answer_fault: AnswerFault | None = None
    outage: Outage | None = None
    session_faults: dict[str, AnswerFault] = Field(default_factory=dict)
    validating_seconds: float = Field(default=0.2, ge=0)
    in_progress_seconds: float = Field(default=0.2, ge=0)
    finalizing_seconds: float = Field(default=0.2, ge=0)
    cancelling_seconds: float = Field(default=0.2, ge=0)
    batch_outcome: BatchOutcome = "completed"
    enqueued_token_limit: int | None = Field(default=None, ge=1)
    partial_fraction: float = Field(default=0.5, ge=0, le=1)
    batch_error_fraction: float = Field(default=0.0, ge=0, le=1)
    batch_error_status: BatchErrorStatus = 500

    def update(self, changes: Mapping[str, object]) -> None:
        """Apply ``changes`` all together or, if any of them is invalid, none (pydantic ValidationError)."""
        merged = Knobs.model_validate({**self.model_dump(), **changes})
        for name in changes:
            setattr(self, name, getattr(merged, name))

    def restore_defaults(self) -> None:
        self.update(Knobs().model_dump())

    def answer_fault_for(self, session_id: str | None) -> AnswerFault | None:
        """The wrong answer due for ``session_id``; a fault for the session beats the one for all."""
        if session_id is not None and session_id in self.session_faults:
            return self.session_faults[session_id]
        return self.answer_fault


def evenly_selected(position: int, rate: float) -> bool:
    """Whether event number ``position`` (from 1) is one of a ``rate`` share of events spread evenly.

    Of the first n events exactly ``share_of(n, rate)`` are selected.
    """
    return share_of(position, rate) > share_of(position - 1, rate)


def share_of(count: int, rate: float) -> int:
    """A ``rate`` share of ``count``, rounded down.

    The rate is taken as the decimal it is written as: 0.29 of 100 is 29, not 28 through binary rounding.
    """
    return math.floor(count * Fraction(repr(rate)))
