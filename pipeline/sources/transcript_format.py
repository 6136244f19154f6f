"""The chat transcript: its bytes decoded to text, and the text parsed into ordered messages.

The format (``docs/import-processing.md``): plain text, one turn per line, a turn possibly running over
several lines::

    [30.04.2025 11:38:14] User: message text
    [30.04.2025 11:38:20] Assistant: reply text
    that goes on here

This is one parser that keeps multi-line turns, the timestamps (read in the company's zone by
:func:`~pipeline.sources.timestamps.parse_local_timestamp`) and every piece of text, and writes one casing.

The rules, including the choices the format leaves open:

* Lines end in LF, CRLF or a lone CR. Only those split lines: a U+2028 inside a message stays in it.
* A turn starts on a line ``[<timestamp>] <Role>: <text>`` or ``<Role>: <text>``, after leading whitespace.
  A role prefix is one word of letters, at most 20 of them, right before a ``:`` that does not start ``//``
  (so ``https://`` is no role). Known words, any case, are mapped to ``user``, ``assistant`` or ``system`` by
  :data:`ROLE_SYNONYMS`.
* After a bracket timestamp any line starts a turn: an unknown word (``Supervisor: hi``) or no word at all
  gives role ``unknown``, with the text after the timestamp kept whole, and a warning. Without a bracket
  only a known role word starts a turn, so ``Note: ...`` inside a message stays in it.
* A bracket at the start of a line whose content is not a timestamp is not one, with a warning. If a known
  role follows it, the line starts a turn without a timestamp (the bracket is named in the warning only);
  otherwise the whole line is text of the current turn.
* Any other line continues the current turn, joined with ``\\n``; its indentation is kept, its trailing
  whitespace is not. Blank lines between text of one turn become one empty line (a paragraph break); blank
  lines at the start or end of a turn are dropped, and each content is stripped.
* Text before the first turn is a turn of its own with role ``unknown``, with a warning: nothing is lost.
* A turn with empty content is dropped, with a warning, and takes no ``order``; ``order`` counts the kept
  turns from 0 in file order. Messages are never sorted by timestamp.
* Empty or whitespace-only text has no messages and no warnings; what that means is the caller's decision.
* Warnings name their line (from 1) and are capped at :data:`MAX_WARNINGS`, then summarised in one more.
* At most ``max_messages`` turns are kept: parsing stops where the next one would start, and
  :attr:`ParsedTranscript.truncated` says so, with that line's number. (A 4.8 MB file of ``User: a`` lines
  would otherwise become 600,000 messages.) The whole text stays on the import; nothing else is cut.
* Decoding: a UTF-8 BOM is dropped; text that is not UTF-8 is read as Windows-1252, the usual encoding of
  such files, with the five bytes Windows-1252 leaves undefined read as Latin-1; NULs are removed, since
  PostgreSQL text cannot hold them.

Parsing is one lazy pass over the lines (never a list of all of them), with work linear in their length:
string methods, and only the timestamp patterns, which have bounded repetitions and cannot backtrack badly.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

from pipeline.sources.timestamps import TimestampError, parse_local_timestamp

__all__ = [
    "ASSISTANT",
    "MAX_WARNINGS",
    "ROLE_SYNONYMS",
    "SYSTEM",
    "UNKNOWN_ROLE",
    "USER",
    "DecodedTranscript",
    "ParsedMessage",
    "ParsedTranscript",
    "count_user_messages",
    "decode_transcript",
    "parse_transcript",
]

USER = "user"
ASSISTANT = "assistant"
SYSTEM = "system"
#: The role of text that belongs to no recognised speaker.
UNKNOWN_ROLE = "unknown"

#: Every role word that starts a turn, case-folded, and the role it stands for.
ROLE_SYNONYMS: Mapping[str, str] = MappingProxyType(
    {
        USER: USER,
        "customer": USER,
        "client": USER,
        "human": USER,
        "employee": USER,
        "visitor": USER,
        ASSISTANT: ASSISTANT,
        "bot": ASSISTANT,
        "agent": ASSISTANT,
        "ai": ASSISTANT,
        "assistent": ASSISTANT,
        "chatbot": ASSISTANT,
        SYSTEM: SYSTEM,
    }
)

#: The most warnings one transcript reports; a garbled file must not turn into megabytes of warnings.
MAX_WARNINGS = 50


@dataclass(frozen=True, slots=True)
class DecodedTranscript:
    """A transcript's text, and what was done to make it text (empty when it was clean UTF-8)."""

    text: str
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """One turn of a transcript.

    Parameters:
      order(int): Its position among the kept turns, from 0, in file order.
      role(str): ``user``, ``assistant``, ``system`` or ``unknown``.
      content(str): Its text, stripped, never empty; lines joined with ``\\n``.
      timestamp(datetime | None): Its bracket timestamp in UTC, or ``None`` when the turn had none.
    """

    order: int
    role: str
    content: str
    timestamp: datetime | None


@dataclass(frozen=True, slots=True)
class ParsedTranscript:
    """The messages of a transcript in file order, and warnings about the text that did not fit the format.

    ``truncated`` says why and where parsing stopped early, or is ``None`` when every turn was kept.
    """

    messages: tuple[ParsedMessage, ...]
    warnings: tuple[str, ...]
    truncated: str | None = None


def decode_transcript(data: bytes) -> DecodedTranscript:
    """Decode a transcript body: UTF-8 (BOM dropped) or else Windows-1252, without NULs."""
    warnings: list[str] = []
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    body = data[start:]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Offsets count from the start of ``data``, BOM included, as a hex editor would show them.
        warnings.append(
            f"not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset {start + exc.start}): "
            "decoded as Windows-1252"
        )
        text = body.decode("cp1252", "surrogateescape").translate(_LATIN1_FOR_UNDEFINED)
    nuls = text.count("\x00")
    if nuls:
        text = text.replace("\x00", "")
        warnings.append(f"removed {nuls} NUL character(s): PostgreSQL text cannot hold them")
    return DecodedTranscript(text, tuple(warnings))


def parse_transcript(text: str, zone: ZoneInfo, *, max_messages: int | None = None) -> ParsedTranscript:
    """Parse transcript text into messages; bracket timestamps are wall-clock times in ``zone``.

    With ``max_messages``, parsing stops where a turn past that many kept messages would start.
    """
    warnings = _Warnings()
    messages: list[ParsedMessage] = []
    # Text before the first turn collects here; it becomes a message only if it holds any text.
    turn = _Turn(UNKNOWN_ROLE, None, 1, preamble=True)
    for number, line in enumerate(_lines(text), start=1):
        start = _turn_start(line, number, zone, warnings)
        if start is None:
            turn.add(line)
            continue
        _finish(turn, messages, warnings)
        if max_messages is not None and len(messages) >= max_messages:
            truncated = f"more than {max_messages} messages: the text from line {number} on was not parsed"
            return ParsedTranscript(tuple(messages), warnings.result(), truncated)
        role, timestamp, first_text = start
        turn = _Turn(role, timestamp, number)
        turn.add(first_text)
    _finish(turn, messages, warnings)
    return ParsedTranscript(tuple(messages), warnings.result())


def count_user_messages(messages: Iterable[ParsedMessage]) -> int:
    """How many of ``messages`` the user wrote."""
    return sum(1 for message in messages if message.role == USER)


#: Windows-1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined; decoded with ``surrogateescape`` they
#: come out as lone surrogates U+DC81 etc., which this turns into their Latin-1 characters (U+0081 etc.).
_LATIN1_FOR_UNDEFINED = {0xDC00 + byte: byte for byte in range(0x80, 0x100)}

#: LF, CRLF and a lone CR end a line, and nothing else does (not U+2028, which str.splitlines takes).
_LINE_END = re.compile(r"\r\n?|\n")

_MAX_ROLE_LENGTH = 20
_SHOWN_LENGTH = 40


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text`` one at a time, without their ends."""
    start = 0
    for end in _LINE_END.finditer(text):
        yield text[start : end.start()]
        start = end.end()
    yield text[start:]


class _Warnings:
    """The warnings of one parse, the first :data:`MAX_WARNINGS` kept and the rest only counted."""

    def __init__(self) -> None:
        self._kept: list[str] = []
        self._dropped = 0

    def add(self, warning: str) -> None:
        if len(self._kept) < MAX_WARNINGS:
            self._kept.append(warning)
        else:
            self._dropped += 1

    def result(self) -> tuple[str, ...]:
        if self._dropped:
            return (*self._kept, f"{self._dropped} more warning(s) not shown")
        return tuple(self._kept)


class _Turn:
    """A turn being read: its role, timestamp and the line it starts on, and its content lines so far."""

    __slots__ = ("line_number", "lines", "paragraph_break", "preamble", "role", "timestamp")

    def __init__(
        self, role: str, timestamp: datetime | None, line_number: int, *, preamble: bool = False
    ) -> None:
        self.role = role
        self.timestamp = timestamp
        self.line_number = line_number
        self.preamble = preamble
        self.lines: list[str] = []
        self.paragraph_break = False

    def add(self, line: str) -> None:
        """Append a line without its trailing whitespace; a blank line only marks a paragraph break."""
        line = line.rstrip()
        if not line:
            self.paragraph_break = bool(self.lines)
            return
        if self.paragraph_break:
            self.lines.append("")
            self.paragraph_break = False
        self.lines.append(line)


def _finish(turn: _Turn, messages: list[ParsedMessage], warnings: _Warnings) -> None:
    content = "\n".join(turn.lines).strip()
    if not content:
        # Blank lines before the first turn are no turn at all, so nothing was dropped.
        if not turn.preamble:
            warnings.add(f"line {turn.line_number}: empty {turn.role} turn dropped")
        return
    if turn.preamble:
        warnings.add(f"line {turn.line_number}: text before the first turn kept with role {UNKNOWN_ROLE!r}")
    messages.append(ParsedMessage(len(messages), turn.role, content, turn.timestamp))


def _turn_start(
    line: str, number: int, zone: ZoneInfo, warnings: _Warnings
) -> tuple[str, datetime | None, str] | None:
    """The role, timestamp and first text of the turn ``line`` starts, or ``None`` for a continuation line."""
    text = line.lstrip()
    if text.startswith("["):
        close = text.find("]")
        if close != -1:
            rest = text[close + 1 :].lstrip()
            prefix = _role_prefix(rest)
            try:
                timestamp = parse_local_timestamp(text[1:close], zone)
            except TimestampError as exc:
                role = _known_role(prefix)
                outcome = "turn has no timestamp" if role else "line kept as text"
                bracket = _show(text[: close + 1])
                warnings.add(f"line {number}: {bracket} is not a timestamp: {exc.reason}; {outcome}")
                return None if prefix is None or role is None else (role, None, prefix[1])
            if prefix is None:
                warnings.add(f"line {number}: no role after the timestamp: kept with role {UNKNOWN_ROLE!r}")
                return UNKNOWN_ROLE, timestamp, rest
            role = _known_role(prefix)
            if role is None:
                warnings.add(
                    f"line {number}: unknown role {_show(prefix[0])}: kept with role {UNKNOWN_ROLE!r}"
                )
                return UNKNOWN_ROLE, timestamp, rest
            return role, timestamp, prefix[1]
    prefix = _role_prefix(text)
    role = _known_role(prefix)
    return None if prefix is None or role is None else (role, None, prefix[1])


def _role_prefix(text: str) -> tuple[str, str] | None:
    """Split ``Word: rest`` into the word and the stripped rest; ``None`` if ``text`` has no role prefix."""
    colon = text.find(":", 1, _MAX_ROLE_LENGTH + 1)
    if colon == -1 or text.startswith("//", colon + 1):
        return None
    word = text[:colon]
    return (word, text[colon + 1 :].strip()) if word.isalpha() else None


def _known_role(prefix: tuple[str, str] | None) -> str | None:
    return None if prefix is None else ROLE_SYNONYMS.get(prefix[0].casefold())


def _show(value: str) -> str:
    """Quote a value for a warning, shortened: warnings are read by people, not parsed."""
    if len(value) > _SHOWN_LENGTH:
        value = value[:_SHOWN_LENGTH] + "…"
    return repr(value)
