"""The analysis prompt: the instructions, the transcript as the model reads it, and the request body.

Both paths send the same body (:func:`request_body`): the synchronous path to ``/v1/chat/completions``, the
Batch path as the ``body`` of each JSONL line: one prompt asking for all of :class:`SessionAnalysis`
(``docs/session-analysis.md``).

The user message has a fixed shape, which the OpenAI emulator (``pipeline.devtools.openai_emulator``)
parses, so change both together::

    Session ID: 0f6c3c1e-7d1b-4c55-9f49-2f1f5f7a8b21

    [2025-02-01 10:00:00] user: How many vacation days do I have left?
    [2025-02-01 10:00:03] assistant: Your leave balance is in the app.
    Days you requested are already deducted.
    [no time] user: Thanks!

Times are UTC; a message without one shows ``[no time]``; further lines of a message follow it as they are.

A request is bounded by ``OPENAI_MAX_PROMPT_TOKENS`` (:func:`fit_transcript`). Tokens are estimated without
a tokenizer, as one per :data:`BYTES_PER_TOKEN` bytes of UTF-8: more than a real tokenizer counts for prose
in the languages seen (about four characters a token), and one a character for CJK scripts. A transcript
that does not fit keeps its beginning and its end, each about half of the room, whole messages where they
fit (a single message larger than its half is cut), with one line in between saying how many messages were
left out; what was done is recorded on the session (``session.prompt_truncation``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from pipeline.analysis.schema import (
    MAX_QUESTIONS,
    RESPONSE_FORMAT,
    SCHEMA_VERSION,
    SUMMARY_MAX_CHARS,
    SUMMARY_MIN_CHARS,
)
from pipeline.db.enums import SentimentCategory, SessionCategory


class MessageRow(Protocol):
    """What :meth:`PromptMessage.from_row` reads of a stored message."""

    @property
    def role(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def timestamp(self) -> datetime | None: ...


__all__ = [
    "BYTES_PER_TOKEN",
    "CATEGORY_GUIDE",
    "MAX_TOKENS",
    "PROMPT_VERSION",
    "SYSTEM_PROMPT",
    "TEMPERATURE",
    "FittedTranscript",
    "PromptMessage",
    "analysis_key",
    "build_messages",
    "estimate_prompt_tokens",
    "estimated_tokens",
    "fit_transcript",
    "request_body",
]

#: Raised whenever the instructions change: part of an analysis's key, so a new prompt analyses again.
PROMPT_VERSION: Final = 1
#: Tokens OpenAI adds around each chat message (role, separators), counted generously.
_TOKENS_PER_MESSAGE: Final = 8

#: Low, so the same conversation gets the same analysis.
TEMPERATURE: Final = 0.1
#: Completion token cap. A full answer (300-character summary, 5 questions) takes about 250 tokens.
MAX_TOKENS: Final = 1000

#: One line per category, so the model can tell neighbours apart (contract hours from schedules, say).
CATEGORY_GUIDE: Final[Mapping[SessionCategory, str]] = {
    SessionCategory.SCHEDULE_HOURS: "work schedules, rosters, shifts and working times",
    SessionCategory.LEAVE_VACATION: "vacation, days off, leave requests and leave balance",
    SessionCategory.SICK_LEAVE_RECOVERY: "reporting sick, sick leave, doctor's visits and returning to work",
    SessionCategory.SALARY_COMPENSATION: "pay, payslips, wages, bonuses, allowances and expenses",
    SessionCategory.CONTRACT_HOURS: "the contract, contracted hours, part-time or full-time, overtime",
    SessionCategory.ONBOARDING: "starting the job: first day, induction, training, getting set up",
    SessionCategory.OFFBOARDING: "leaving the job: resignation, notice period, last working day",
    SessionCategory.WORKWEAR_STAFF_PASS: "work clothing, uniforms, staff passes and badges",
    SessionCategory.TEAM_CONTACTS: "reaching colleagues, team leaders or managers, and who to contact",
    SessionCategory.PERSONAL_QUESTIONS: "the employee's own details: address, moving house, bank account",
    SessionCategory.ACCESS_LOGIN: "logging in, passwords, locked accounts and access to apps",
    SessionCategory.SOCIAL_QUESTIONS: "small talk with the assistant: greetings, how are you, is it a bot",
    SessionCategory.UNRECOGNIZED_OTHER: "anything else, or a conversation whose topic is unclear",
}

_SENTIMENTS = ", ".join(SentimentCategory)
_CATEGORY_LINES = "\n".join(f"  - {category}: {text}" for category, text in CATEGORY_GUIDE.items())

SYSTEM_PROMPT: Final = f"""\
You analyse one conversation between an employee and a company's HR assistant chatbot.

The conversation comes in the user message. Its first line is "Session ID: <id>", then a blank line, then
one line per message: "[YYYY-MM-DD HH:MM:SS] <role>: <text>", with the time in UTC or "[no time]". A message
of several lines continues on the lines after it. The employee's messages have the role "user", in any case.

Answer with one JSON object with exactly these keys:
- language: the employee's main language in the conversation, as an ISO 639-1 code of two lower-case
  letters, such as "en", "nl", "de" or "tr".
- sentiment: the overall tone of the conversation, one of {_SENTIMENTS}.
- escalated: true if the employee asked for, or was escalated to, a supervisor or manager; false otherwise.
- forwarded_hr: true if an HR contact was mentioned or provided; false otherwise.
- category: the one value below that fits the conversation best.
{_CATEGORY_LINES}
- questions: the questions the employee asked, at most {MAX_QUESTIONS}, each paraphrased as one question in
  English, in the order asked; an empty list if there were none.
- summary: what the conversation was about and how it ended, in English, {SUMMARY_MIN_CHARS} to \
{SUMMARY_MAX_CHARS} characters.
- session_id: the id from the "Session ID:" line, copied exactly.

Write the sentiment and category values exactly as listed, in capitals.
"""


@dataclass(frozen=True, slots=True)
class PromptMessage:
    """One message of the transcript as the prompt shows it; ``timestamp`` must be aware."""

    role: str
    content: str
    timestamp: datetime | None

    def __post_init__(self) -> None:
        # A naive time would be read in the server's zone, which is not the company's.
        if self.timestamp is not None and self.timestamp.tzinfo is None:
            raise ValueError(f"naive timestamp {self.timestamp!r}: prompt times must be aware")

    @classmethod
    def from_row(cls, message: MessageRow) -> PromptMessage:
        return cls(role=message.role, content=message.content, timestamp=message.timestamp)

    def line(self) -> str:
        """``[YYYY-MM-DD HH:MM:SS] role: content`` (UTC), content as it is, line breaks included."""
        when = "no time" if self.timestamp is None else f"{self.timestamp.astimezone(UTC):%Y-%m-%d %H:%M:%S}"
        return f"[{when}] {self.role}: {self.content}"


#: Bytes of UTF-8 estimated as one token (see the module's docstring).
BYTES_PER_TOKEN: Final = 3
#: Tokens kept for what surrounds the transcript: the chat format's own tokens and the session id line.
_FRAME_TOKENS = 50
#: Room kept for the line that says how many messages were left out.
_GAP_BYTES = 120
_ELLIPSIS_BYTES = len("…".encode())


def estimated_tokens(text: str) -> int:
    """An over-estimate of the tokens of ``text``: one per :data:`BYTES_PER_TOKEN` bytes of UTF-8."""
    return -(-len(text.encode()) // BYTES_PER_TOKEN)


@dataclass(frozen=True, slots=True)
class FittedTranscript:
    """The transcript as the prompt shows it, within its token budget.

    Parameters:
      text(str): The lines of the messages, joined with line breaks.
      messages(int): How many messages the session has (0: nothing to analyse).
      truncation(str | None): What was left out to fit, or ``None`` when the whole transcript is there.
    """

    text: str
    messages: int
    truncation: str | None = None


def fit_transcript(messages: Sequence[PromptMessage], *, max_prompt_tokens: int) -> FittedTranscript:
    """The transcript of ``messages``, its beginning and end kept if the whole would make the request larger
    than ``max_prompt_tokens`` (estimated, instructions included)."""
    lines = [message.line() for message in messages]
    room = (max_prompt_tokens - estimated_tokens(SYSTEM_PROMPT) - _FRAME_TOKENS) * BYTES_PER_TOKEN
    sizes = [len(line.encode()) + 1 for line in lines]
    if sum(sizes) <= room:
        return FittedTranscript("\n".join(lines), len(lines))
    room -= _GAP_BYTES
    head, head_bytes, head_cut = _fitting(lines, sizes, room // 2, from_end=False)
    tail, _, tail_cut = _fitting(
        lines[len(head) :][::-1], sizes[len(head) :][::-1], room - head_bytes, from_end=True
    )
    tail.reverse()
    left_out = len(lines) - len(head) - len(tail)
    what = f"{left_out} of {len(lines)} messages" if left_out else "part of a message"
    gap = f"[… {what} left out here: the conversation is too long for the prompt …]"
    cut = " (one message cut)" if head_cut or tail_cut else ""
    truncation = (
        f"prompt limited to about {max_prompt_tokens} tokens: the first {len(head)} and the last "
        f"{len(tail)} of {len(lines)} messages sent{cut}"
    )
    return FittedTranscript("\n".join([*head, gap, *tail]), len(lines), truncation)


def _fitting(
    lines: Sequence[str], sizes: Sequence[int], room: int, *, from_end: bool
) -> tuple[list[str], int, bool]:
    """The first ``lines`` that fit in ``room`` bytes, their size, and whether the first had to be cut to fit.

    A cut line keeps its start (or, ``from_end``, its end), with ``…`` where the rest was.
    """
    kept: list[str] = []
    used = 0
    for line, size in zip(lines, sizes, strict=True):
        if used + size > room:
            break
        kept.append(line)
        used += size
    if kept or not lines or room <= _ELLIPSIS_BYTES + 1:
        return kept, used, False
    data = lines[0].encode()
    keep = room - _ELLIPSIS_BYTES - 1
    if from_end:
        cut = "…" + data[len(data) - keep :].decode(errors="ignore")
    else:
        cut = data[:keep].decode(errors="ignore") + "…"
    return [cut], len(cut.encode()) + 1, True


def build_messages(session_id: str, transcript: FittedTranscript) -> list[dict[str, str]]:
    """The chat messages of the analysis request: the instructions, then the transcript in order.

    Raises ``ValueError`` for a session without messages, which has nothing to analyse,
    and for a session id that is empty or has spaces, which the model could not echo back unchanged.
    """
    if not session_id or any(character.isspace() for character in session_id):
        raise ValueError(f"session id {session_id!r} must be one non-empty word")
    if not transcript.messages:
        raise ValueError(f"session {session_id} has no messages to analyse")
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Session ID: {session_id}\n\n{transcript.text}"},
    ]


def request_body(model: str, session_id: str, transcript: FittedTranscript) -> dict[str, Any]:
    """The chat completion body analysing one session: the synchronous request, or a batch line's ``body``."""
    return {
        "model": model,
        "messages": build_messages(session_id, transcript),
        # A copy: the caller may add to the body it gets without touching the shared constant.
        "response_format": copy.deepcopy(RESPONSE_FORMAT),
        "temperature": TEMPERATURE,
        "max_tokens": MAX_TOKENS,
    }


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    """An upper estimate of the prompt tokens of ``body``: its messages and its response format.

    What a request reserves of its company's budget and counts against the enqueued-token limit before
    OpenAI has counted it (``docs/session-analysis.md``, "Budgets").
    """
    messages = body.get("messages") or []
    text = "".join(str(message.get("content") or "") for message in messages)
    text += json.dumps(body.get("response_format") or {}, separators=(",", ":"))
    return estimated_tokens(text) + _TOKENS_PER_MESSAGE * len(messages)


def analysis_key(body: Mapping[str, Any]) -> str:
    """What an analysis analysed, as a sha256: the model, the prompt and schema versions, the messages sent.

    Two requests with the same key ask the same question; an answer to one is the answer to the other.
    """
    keyed = {
        "model": body["model"],
        "prompt_version": PROMPT_VERSION,
        "schema_version": SCHEMA_VERSION,
        "messages": body["messages"],
    }
    return hashlib.sha256(json.dumps(keyed, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
