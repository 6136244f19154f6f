"""The company CSV: its 16 positional columns, and a streaming parser from bytes to rows and row errors.

The format (``docs/csv-import.md``): comma-separated, double-quote quoting, no header, columns by
position. :func:`parse_session_rows` reads it from byte chunks as they arrive and yields, in file order,
one :class:`SessionRow` per good record and one :class:`RowError` per bad one, so a bad record never stops
the file and never vanishes silently. Memory stays bounded by the largest record, not the file.

Choices the format leaves open, made here:

* Lines end in LF, CRLF or a lone CR; line numbers count physical lines of the file, starting at 1.
* Every field is trimmed, quoted or not. A line that is empty once trimmed is skipped; a line of bare commas
  is not blank but a record with an empty session id.
* A header row is recognised only as the first record: its column 0 names the session id, or its columns 1
  and 2 name the start and end times (legacy or field names, any case). It is skipped. A record that looks
  like a header anywhere else is a :class:`RowError`, as it would otherwise import as a session whose dates
  never parse.
* Invalid UTF-8 is decoded with ``surrogateescape``: each undecodable byte becomes a lone surrogate, which
  valid UTF-8 can never produce, so the record holding it is found exactly and becomes a :class:`RowError`.
* ``raw_excerpt`` is the record's text with undecodable bytes and NULs shown as U+FFFD, so it can be stored.
* Integers must fit PostgreSQL ``integer`` and reals ``real``, or one bad row would abort a whole COPY.
* A field longer than the csv module's limit (131072 characters) is a :class:`RowError`; if it was a quoted
  field spanning lines, its remaining lines are then read as records of their own.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import operator
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["COLUMNS", "Column", "ColumnKind", "RowError", "SessionRow", "parse_session_rows"]


class ColumnKind(Enum):
    """How a column's trimmed text becomes a value. Empty optional fields become ``None``."""

    REQUIRED_TEXT = "required text"
    TEXT = "text"
    INTEGER = "integer"
    REAL = "real"


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the company CSV.

    Parameters:
      index(int): Position in the record, from 0.
      field(str): The SessionImport field it fills; the :class:`SessionRow` attribute is its snake_case.
      legacy_name(str): Its name in the header row of older exports (snake case).
      kind(ColumnKind): How its text is converted.
      max_length(int | None): Longest text accepted, in characters, for the text kinds.
    """

    index: int
    field: str
    legacy_name: str
    kind: ColumnKind
    max_length: int | None = None


_REQUIRED = ColumnKind.REQUIRED_TEXT
_TEXT = ColumnKind.TEXT

#: The format, in column order. The lengths are the SessionImport varchar sizes; the session id is capped
#: too, and the URL and initial message get generous caps against runaway fields.
COLUMNS: tuple[Column, ...] = (
    Column(0, "externalSessionId", "session_id", _REQUIRED, 255),
    Column(1, "startTimeRaw", "start_time", _REQUIRED, 255),
    Column(2, "endTimeRaw", "end_time", _REQUIRED, 255),
    Column(3, "ipAddress", "ip_address", _TEXT, 45),
    Column(4, "countryCode", "country", _TEXT, 64),
    Column(5, "language", "language", _TEXT, 64),
    Column(6, "messagesSent", "messages_sent", ColumnKind.INTEGER),
    Column(7, "sentimentRaw", "sentiment", _TEXT, 50),
    Column(8, "escalatedRaw", "escalated", _TEXT, 50),
    Column(9, "forwardedHrRaw", "forwarded_hr", _TEXT, 50),
    Column(10, "fullTranscriptUrl", "full_transcript_url", _TEXT, 8192),
    Column(11, "avgResponseTimeSeconds", "avg_response_time", ColumnKind.REAL),
    Column(12, "tokens", "tokens", ColumnKind.INTEGER),
    Column(13, "tokensEur", "tokens_eur", ColumnKind.REAL),
    Column(14, "category", "category", _TEXT, 255),
    Column(15, "initialMessage", "initial_msg", _TEXT, 65536),
)


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One good CSV record, with its 16 fields converted (attributes in :data:`COLUMNS` order).

    ``content_hash`` is the hex SHA-256 of the converted fields: equal for equal content (``"1.50"`` and
    ``"1.5"`` are equal), different as soon as any field differs, so a row the company changed is detectable.
    """

    line_number: int
    external_session_id: str
    start_time_raw: str
    end_time_raw: str
    ip_address: str | None
    country_code: str | None
    language: str | None
    messages_sent: int | None
    sentiment_raw: str | None
    escalated_raw: str | None
    forwarded_hr_raw: str | None
    full_transcript_url: str | None
    avg_response_time_seconds: float | None
    tokens: int | None
    tokens_eur: float | None
    category: str | None
    initial_message: str | None
    content_hash: str


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad CSV record: where it starts, why it was refused, and the start of its text (≤ 500 chars)."""

    line_number: int
    reason: str
    raw_excerpt: str


def parse_session_rows(chunks: Iterable[bytes]) -> Iterator[SessionRow | RowError]:
    """Parse the company CSV from byte chunks, yielding rows and row errors in file order.

    Chunks are pulled only as the records are consumed, so an HTTP body can be streamed straight through;
    an exception raised by ``chunks`` (a size cap, a timeout) propagates out of the iteration unchanged.
    """
    text = io.TextIOWrapper(
        io.BufferedReader(_ChunkReader(chunks), buffer_size=_READ_SIZE),
        encoding="utf-8-sig",
        errors="surrogateescape",
        newline="",
    )
    with text:
        record: list[str] = []
        reader = csv.reader(_recording(text, record), _Dialect)
        first = True
        while True:
            line_number = reader.line_num + 1
            record.clear()
            row: SessionRow | RowError | None
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row = RowError(line_number, f"malformed CSV: {exc}", _excerpt(record))
            else:
                values = [field.strip() for field in fields]
                if len(values) <= 1 and not any(values):
                    continue
                try:
                    row = _convert(line_number, values, first=first)
                except _InvalidRecord as exc:
                    row = RowError(line_number, str(exc), _excerpt(record))
            first = False
            if row is not None:
                yield row


_READ_SIZE = 64 * 1024
_EXCERPT_LENGTH = 500
_SHOWN_VALUE_LENGTH = 40
_INTEGER_MAX = 2**31 - 1  # PostgreSQL integer
_REAL_MAX = 3.4028234663852886e38  # PostgreSQL real (float4): larger is an overflow error
_REAL_MIN = 1.401298464324817e-45  # smallest positive float4: a smaller non-zero value is an underflow error
_HEADER_NAMES = [{column.field.casefold(), column.legacy_name.casefold()} for column in COLUMNS]
_HEADER_NAMES[0].add("sessionid")


class _Dialect(csv.Dialect):
    delimiter = ","
    quotechar = '"'
    doublequote = True
    # Keeps ` "a, b"` (a space before the opening quote) one quoted field, as padding exporters expect.
    skipinitialspace = True
    lineterminator = "\n"
    quoting = csv.QUOTE_MINIMAL
    strict = False


class _InvalidRecord(ValueError):
    """Internal: the record is refused; the message is the :class:`RowError` reason."""


class _InvalidField(_InvalidRecord):
    def __init__(self, column: Column, problem: str) -> None:
        super().__init__(f"column {column.index} ({column.field}): {problem}")


class _ChunkReader(io.RawIOBase):
    """A raw binary stream over an iterable of byte chunks, for :class:`io.BufferedReader`."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        # An empty chunk must not be taken for the end of the stream, which a 0 return means.
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        target = memoryview(buffer)
        size = min(len(target), len(self._pending))
        target[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _recording(lines: Iterable[str], record: list[str]) -> Iterator[str]:
    """Pass ``lines`` through, appending each to ``record``: the csv reader keeps no raw text of its own."""
    for line in lines:
        record.append(line)
        yield line


def _convert(line_number: int, values: list[str], *, first: bool) -> SessionRow | None:
    """Turn one non-blank record's trimmed fields into a row; ``None`` for the header row."""
    if len(values) > len(COLUMNS):
        raise _InvalidRecord(f"expected at most {len(COLUMNS)} columns, found {len(values)}")
    values += [""] * (len(COLUMNS) - len(values))
    if _is_header(values):
        if first:
            return None
        raise _InvalidRecord("a header row after the first record")
    _check_characters(values)
    _check_text(values)
    converted: list[Any] = [value or None for value in values]
    # The hashed form: fields joined by NUL, which no field holds, numbers as their repr so that "1.50" and
    # "1.5" agree. It is unambiguous because a field is "" exactly when its value is None.
    canonical = values.copy()
    for index, convert in _NUMBER_CONVERTERS:
        number = converted[index] = convert(values[index])
        canonical[index] = "" if number is None else repr(number)
    converted.append(hashlib.sha256("\x00".join(canonical).encode("utf-8")).hexdigest())
    return SessionRow(line_number, *converted)


def _is_header(values: list[str]) -> bool:
    if values[0].casefold() in _HEADER_NAMES[0]:
        return True
    return values[1].casefold() in _HEADER_NAMES[1] and values[2].casefold() in _HEADER_NAMES[2]


def _check_characters(values: list[str]) -> None:
    """Refuse NULs (PostgreSQL text cannot hold them) and undecodable bytes (lone surrogates here)."""
    joined = "".join(values)
    if "\x00" in joined:
        column = next(column for column, value in zip(COLUMNS, values, strict=True) if "\x00" in value)
        raise _InvalidField(column, "contains a NUL character")
    if joined.isascii():
        return
    for column, value in zip(COLUMNS, values, strict=True):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _InvalidField(column, "invalid UTF-8") from None


def _check_text(values: list[str]) -> None:
    """Refuse an empty required field or an over-long field, naming the first such column."""
    # Whole-record checks in C first: this runs for every row, the column-by-column loop only for bad ones.
    if all(map(values.__getitem__, _REQUIRED_INDICES)) and not any(
        map(operator.gt, map(len, values), _MAX_LENGTHS)
    ):
        return
    for column, value in zip(COLUMNS, values, strict=True):
        if column.kind is ColumnKind.REQUIRED_TEXT and not value:
            raise _InvalidField(column, "is empty")
        if column.max_length is not None and len(value) > column.max_length:
            raise _InvalidField(column, f"{len(value)} characters, over the limit of {column.max_length}")


def _integer(column: Column, value: str) -> int | None:
    if not value:
        return None
    # Plain ASCII digits after an optional sign: int() alone would also take "1_000" or Arabic-Indic digits.
    digits = value[1:] if value[0] in "+-" else value
    if not (digits.isascii() and digits.isdigit()):
        raise _InvalidField(column, f"{_show(value)} is not an integer")
    significant = digits.lstrip("0")
    if significant and value[0] == "-":
        raise _InvalidField(column, f"{_show(value)} is negative")
    # Past 10 digits it is out of range anyway, and int() of a very long digit string is slow or refused.
    if len(significant) > 10 or (number := int(digits)) > _INTEGER_MAX:
        raise _InvalidField(column, f"{_show(value)} is larger than {_INTEGER_MAX}")
    return number


def _real(column: Column, value: str) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    # float() also takes "nan", "inf", "1_000.5" and non-ASCII digits; none of them is a decimal number here.
    if not (math.isfinite(number) and value.isascii() and "_" not in value):
        raise _InvalidField(column, f"{_show(value)} is not a finite decimal number")
    if number == 0:
        return 0.0  # also turns "-0" into 0.0, so that it hashes like "0"
    if number < 0:
        raise _InvalidField(column, f"{_show(value)} is negative")
    if not _REAL_MIN <= number <= _REAL_MAX:
        raise _InvalidField(column, f"{_show(value)} is out of range for a PostgreSQL real")
    return number


_REQUIRED_INDICES = tuple(column.index for column in COLUMNS if column.kind is ColumnKind.REQUIRED_TEXT)
_MAX_LENGTHS = tuple(sys.maxsize if column.max_length is None else column.max_length for column in COLUMNS)
_NUMBER_CONVERTERS: tuple[tuple[int, Callable[[str], int | float | None]], ...] = tuple(
    (column.index, partial(_integer if column.kind is ColumnKind.INTEGER else _real, column))
    for column in COLUMNS
    if column.kind in (ColumnKind.INTEGER, ColumnKind.REAL)
)


def _show(value: str) -> str:
    """Quote a field value for a reason, shortened: reasons are read by people, not parsed."""
    if len(value) > _SHOWN_VALUE_LENGTH:
        value = value[:_SHOWN_VALUE_LENGTH] + "…"
    return repr(value)


def _excerpt(record: list[str]) -> str:
    """The record's text, cut to the excerpt length, made storable as PostgreSQL text."""
    text = ""
    for line in record:
        text += line
        if len(text) > _EXCERPT_LENGTH:
            break
    text = text.rstrip("\r\n")[:_EXCERPT_LENGTH]
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\x00", "\ufffd")
