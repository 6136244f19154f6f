"""One batch job and its life cycle on the emulator's clock, in the shape of ``openai.types.Batch``.

    validating ──> in_progress ──> finalizing ──> completed
        │               ├────────> expired                  (outcome knob; partial output)
        │               └────────> cancelling ──> cancelled (outcome knob or cancel(); partial output)
        └──> failed                                          (outcome knob)

A job moves only when asked about (``advance``), through every step whose time has come, each stamped with
the time it was due rather than the time someone looked. Phase durations and the outcome are read from the
knobs at each step, so a running batch follows changes to them. Lines are answered when ``in_progress`` ends
(or at a cancel), and delivered, in an order unlike the input's, when the job reaches its end.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from pipeline.devtools.openai_emulator import errors, ids
from pipeline.devtools.openai_emulator.batch_input import BatchInput
from pipeline.devtools.openai_emulator.completions import Completion, complete, tokens_of
from pipeline.devtools.openai_emulator.knobs import Knobs, evenly_selected, share_of
from pipeline.devtools.openai_emulator.ledger import LedgerEntry

__all__ = ["BatchJob", "BatchStatus", "Delivery", "jsonl"]

BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
_TERMINAL: frozenset[BatchStatus] = frozenset({"failed", "completed", "expired", "cancelled"})
#: The real API's completion window, which sets ``expires_at``.
_WINDOW_SECONDS = 24 * 60 * 60
_TIMESTAMPS = (
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a job that has just ended hands over: the lines of its two files, and the answers to bill."""

    output: list[dict[str, object]]
    errors: list[dict[str, object]]
    billed: list[LedgerEntry]


@dataclass(frozen=True, slots=True)
class _Result:
    """One done line: its output or error file line; ``completion`` is None for an error line."""

    custom_id: str
    request_id: str
    line: dict[str, object]
    completion: Completion | None


class BatchJob:
    """A batch from creation to its end. Not thread-safe: the store serialises access."""

    def __init__(
        self,
        batch_input: BatchInput,
        *,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: dict[str, str] | None,
        now: float,
    ) -> None:
        self.id = ids.batch_id()
        self.status: BatchStatus = "validating"
        self.output_file_id: str | None = None
        self.error_file_id: str | None = None
        self._input = batch_input
        self._input_file_id = input_file_id
        self._endpoint = endpoint
        self._completion_window = completion_window
        self._metadata = metadata
        self._created_at = now
        self._times: dict[str, float] = {"expires_at": now + _WINDOW_SECONDS}
        self._results: list[_Result] = []
        self._errors: dict[str, object] | None = None
        #: The prompt tokens of its requests, counted as the answers bill them.
        self.enqueued_tokens = sum(tokens_of(line.request.prompt_chars) for line in batch_input.lines)
        #: Prompt tokens of the model's other batches in progress, set by the store before each advance.
        self.enqueued_elsewhere = 0

    @property
    def model(self) -> str:
        return self._input.model

    @property
    def is_enqueued(self) -> bool:
        """Whether its tokens count against the model's enqueued-token limit: validated and not yet over."""
        return self.status in ("in_progress", "finalizing")

    def advance(self, now: float, knobs: Knobs) -> Delivery | None:
        """Take every step due by ``now``; the delivery if the job has just ended with output."""
        while (step := self._STEPS.get(self.status)) is not None:
            entered = self._created_at if self.status == "validating" else self._times[f"{self.status}_at"]
            due = entered + getattr(knobs, f"{self.status}_seconds")
            if now < due:
                return None
            delivery = step(self, due, knobs)
            if self.status in _TERMINAL:
                return delivery
        return None

    def _validated(self, due: float, knobs: Knobs) -> Delivery | None:
        limit = knobs.enqueued_token_limit
        if limit is not None and self.enqueued_elsewhere + self.enqueued_tokens > limit:
            self._fail(due, limit)
        elif knobs.batch_outcome == "failed":
            self._fail(due)
        else:
            self._enter("in_progress", due)
        return None

    def _processed(self, due: float, knobs: Knobs) -> Delivery | None:
        if knobs.batch_outcome not in ("expired", "cancelled"):
            self._answer(len(self._input.lines), due, knobs)
            self._enter("finalizing", due)
            return None
        self._answer(share_of(len(self._input.lines), knobs.partial_fraction), due, knobs)
        if knobs.batch_outcome == "expired":
            self._enter("expired", due)
            return self._deliver()
        self._enter("cancelling", due)
        return None

    def _finalized(self, due: float, _knobs: Knobs) -> Delivery | None:
        self._enter("completed", due)
        return self._deliver()

    def _cancelled(self, due: float, _knobs: Knobs) -> Delivery | None:
        self._enter("cancelled", due)
        return self._deliver()

    #: The step out of each waiting status, taken when the status has lasted its ``<status>_seconds`` knob.
    _STEPS: ClassVar[dict[str, Callable[[BatchJob, float, Knobs], Delivery | None]]] = {
        "validating": _validated,
        "in_progress": _processed,
        "finalizing": _finalized,
        "cancelling": _cancelled,
    }

    def cancel(self, now: float, knobs: Knobs) -> None:
        """Start cancelling; lines in progress get answered up to ``partial_fraction``. Call advance first."""
        if self.status in _TERMINAL:
            raise errors.ApiError(409, f"Cannot cancel a batch with status '{self.status}'.")
        if self.status == "cancelling":
            return
        if self.status == "in_progress":
            self._answer(share_of(len(self._input.lines), knobs.partial_fraction), now, knobs)
        self._enter("cancelling", now)

    def as_json(self) -> dict[str, object]:
        answered = [result.completion for result in self._results if result.completion is not None]
        input_tokens = sum(completion.prompt_tokens for completion in answered)
        output_tokens = sum(completion.completion_tokens for completion in answered)
        validated = self.status not in ("validating", "failed")
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self._endpoint,
            "model": self._input.model,
            "errors": self._errors,
            "input_file_id": self._input_file_id,
            "completion_window": self._completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self._created_at),
            **{name: int(self._times[name]) if name in self._times else None for name in _TIMESTAMPS},
            "request_counts": {
                "total": len(self._input.lines) if validated else 0,
                "completed": len(answered),
                "failed": len(self._results) - len(answered),
            },
            "metadata": self._metadata,
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            },
        }

    def _enter(self, status: BatchStatus, at: float) -> None:
        self.status = status
        self._times[f"{status}_at"] = at

    def _fail(self, at: float, limit: int = 90_000) -> None:
        # The failure the real API is likeliest to give a valid file: too many tokens queued for the model.
        message = (
            f"Enqueued token limit reached for {self._input.model} in organization org-emulator. Limit: "
            f"{limit:,} enqueued tokens. Please try again once some in_progress batches have been completed."
        )
        self._errors = {
            "object": "list",
            "data": [{"code": "token_limit_exceeded", "line": None, "message": message, "param": None}],
        }
        self._enter("failed", at)

    def _answer(self, count: int, at: float, knobs: Knobs) -> None:
        """Answer the first ``count`` lines; those the error fraction picks go to the error file instead."""
        for position, line in enumerate(self._input.lines[:count], start=1):
            request_id = ids.request_id()
            completion: Completion | None = None
            if evenly_selected(position, knobs.batch_error_fraction):
                failure = _line_error(knobs.batch_error_status, line.request.model, knobs.retry_after)
                status_code, body = failure.status, failure.body()
            else:
                completion = complete(line.request, knobs, at)
                status_code, body = 200, completion.body
            response: dict[str, object] = {"status_code": status_code, "request_id": request_id, "body": body}
            output: dict[str, object] = {
                "id": ids.batch_request_id(),
                "custom_id": line.custom_id,
                "response": response,
                "error": None,
            }
            self._results.append(_Result(line.custom_id, request_id, output, completion))

    def _deliver(self) -> Delivery | None:
        if not self._results:
            return None
        billed = [
            LedgerEntry(
                kind="batch",
                custom_id=result.custom_id,
                request_id=result.request_id,
                model=result.completion.model,
                prompt_tokens=result.completion.prompt_tokens,
                completion_tokens=result.completion.completion_tokens,
                session_id=result.completion.session_id,
                batch_id=self.id,
            )
            for result in self._results
            if result.completion is not None
        ]
        output = [result.line for result in self._results if result.completion is not None]
        failed = [result.line for result in self._results if result.completion is None]
        return Delivery(self._unordered(output), self._unordered(failed), billed)

    def _unordered(self, lines: list[dict[str, object]]) -> list[dict[str, object]]:
        """``lines`` shuffled, reproducibly per batch, and never left in input order."""
        shuffled = list(lines)
        random.Random(self.id).shuffle(shuffled)  # noqa: S311  a reproducible order, not a secret
        if len(shuffled) > 1 and shuffled == lines:
            shuffled = shuffled[1:] + shuffled[:1]
        return shuffled


def jsonl(lines: Sequence[dict[str, object]]) -> bytes:
    """Lines as a JSONL file, newline-terminated as the real output files are."""
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()


def _line_error(status: int, model: str, retry_after: float) -> errors.ApiError:
    match status:
        case 429:
            return errors.rate_limited(model, retry_after)
        case 400:
            return errors.context_length_exceeded()
        case _:
            return errors.server_error()
