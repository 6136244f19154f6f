"""The company CSV: its 16 positional columns, and a streaming parser from bytes to rows and row errors.

The format (``docs/csv-import.md``): comma-separated, double-quote quoting, no header, columns by
position. :func:`parse_session_rows` reads it from byte chunks as they arrive and yields, in file order,
one :class:`SessionRow` per usable record and one :class:`RowError` per unusable one, so a bad record never
stops the file and never vanishes silently. Memory stays bounded by ``max_record_bytes``, not the file.

A record is refused (a :class:`RowError`) only when it cannot become a session: no session id, no start or
end time, a required field over its cap or holding a NUL, more than 16 columns, or over ``max_record_bytes``.
Any other field that cannot be read is stored as null and reported as a :class:`FieldWarning` on its row.

Choices the format leaves open, made here:

* Lines end in LF, CRLF or a lone CR; line numbers count physical lines of the file, starting at 1.
* Every field is trimmed, quoted or not. A line that is empty once trimmed is skipped; a line of bare commas
  is not blank but a record with an empty session id.
* A header row is recognised only as the first record: its column 0 names the session id, or its columns 1
  and 2 name the start and end times (legacy or field names, any case). It is skipped. A record that looks
  like a header anywhere else is a :class:`RowError`, as it would otherwise import as a session whose dates
  never parse.
* Text is UTF-8. A byte that is not part of valid UTF-8 is read as Windows-1252 (the usual Excel export),
  byte by byte, so valid UTF-8 around it in the same field is never garbled; the field is kept and warned
  about. The five bytes Windows-1252 leaves undefined become U+FFFD.
* Numbers are plain: integers are ASCII digits with an optional ``+``; decimals are what ``float`` reads in
  ASCII, without ``_``, ``nan`` or ``inf`` (``1e-05`` is read). Anything else (``1,5``, ``1.234,5``, ``€3``,
  ``1e3`` for a count, a negative value, a value out of range) is stored as null with a warning: a decimal
  comma and a thousands separator cannot be told apart (``1,234``), and a wrong number is worse than none.
* Integers must fit PostgreSQL ``integer`` and reals ``real``, or one bad row would abort a whole COPY.
* ``raw_excerpt`` is the record's text with undecodable bytes and NULs shown as U+FFFD, so it can be stored,
  and with credentials masked by :func:`pipeline.redaction.redact` (a URL's password, its query values)
  before it is cut, so that a cut never leaves half a secret. So are warnings' excerpts and the values
  quoted in reasons.
* A field longer than the csv module's limit (131072 characters) is a :class:`RowError`; if it was a quoted
  field spanning lines, its remaining lines are then read as records of their own. So are the lines after a
  record cut at ``max_record_bytes``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import operator
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from pipeline.redaction import redact

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "COLUMNS",
    "DEFAULT_MAX_RECORD_BYTES",
    "Column",
    "ColumnKind",
    "FieldWarning",
    "RowError",
    "SessionRow",
    "parse_session_rows",
]

#: Bytes one record may take, quoted line breaks included. The largest valid record is about 300 kB (a
#: 65,536-character initial message in 4-byte characters, plus the other caps); one line of 100 MB is not.
DEFAULT_MAX_RECORD_BYTES = 1024 * 1024


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

    @property
    def label(self) -> str:
        """How reasons name the column: ``column 6 (messagesSent)``."""
        return f"column {self.index} ({self.field})"


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
class FieldWarning:
    """A field of a stored row that could not be read as written: stored as null, or decoded by fallback.

    Parameters:
      line_number(int): Where its record starts.
      column(str): The column's field name, such as ``messagesSent``.
      reason(str): Why, naming the column: ``column 6 (messagesSent): 'twelve' is not an integer``.
      value_excerpt(str): The start of the value as read (at most 100 characters, URL credentials masked).
    """

    line_number: int
    column: str
    reason: str
    value_excerpt: str


class SessionRow(NamedTuple):
    """One usable CSV record, with its 16 fields converted (attributes in :data:`COLUMNS` order).

    A named tuple rather than a frozen dataclass: a file makes one per line, and building a frozen dataclass
    of 19 fields cost six times as much (5 µs a line, a tenth of the import's parse).

    ``content_hash`` is the hex SHA-256 of the converted fields: equal for equal content (``"1.50"`` and
    ``"1.5"`` are equal), different as soon as any field differs, so a row the company changed is detectable.
    ``warnings`` name the fields stored as null or decoded by fallback.
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
    warnings: tuple[FieldWarning, ...] = ()


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad CSV record: where it starts, why it was refused, and the start of its text (≤ 500 chars)."""

    line_number: int
    reason: str
    raw_excerpt: str


def parse_session_rows(
    chunks: Iterable[bytes], *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[SessionRow | RowError]:
    """Parse the company CSV from byte chunks, yielding rows and row errors in file order.

    Chunks are pulled only as the records are consumed, so an HTTP body can be streamed straight through;
    an exception raised by ``chunks`` (a size cap, a timeout) propagates out of the iteration unchanged.
    A record over ``max_record_bytes`` is a :class:`RowError`; the rest of its line is read and dropped
    piece by piece, never held.
    """
    text = io.TextIOWrapper(
        io.BufferedReader(_ChunkReader(chunks), buffer_size=_READ_SIZE),
        encoding="utf-8-sig",
        errors="surrogateescape",
        newline="",
    )
    with text:
        lines = _BoundedLines(text, max_record_bytes)
        reader = csv.reader(lines, _Dialect)
        first = True
        while True:
            line_number = lines.start_record()
            row: SessionRow | RowError | None
            try:
                fields = next(reader)
            except StopIteration:
                return
            except (csv.Error, _RecordTooLong) as exc:
                reason = str(exc) if isinstance(exc, _RecordTooLong) else f"malformed CSV: {exc}"
                row = RowError(line_number, reason, _excerpt(lines.record))
            else:
                values = [field.strip() for field in fields]
                if len(values) <= 1 and not any(values):
                    continue
                try:
                    row = _convert(line_number, values, first=first)
                except _InvalidRecord as exc:
                    row = RowError(line_number, str(exc), _excerpt(lines.record))
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
        super().__init__(f"{column.label}: {problem}")


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


class _RecordTooLong(Exception):
    """Internal: raised by :class:`_BoundedLines` through the csv reader, which then starts afresh."""


class _BoundedLines:
    """The physical lines of the text for the csv reader, each record held to ``max_bytes``.

    It keeps the lines of the current record (for the excerpt of a row error) and counts physical lines,
    which the csv reader cannot do once a line was cut. Lines are read ``max_bytes + 1`` characters at a
    time, so an endless line is never held whole: once a record is over the bound the rest of its line is
    read and dropped, and :class:`_RecordTooLong` tells the caller.
    """

    def __init__(self, text: io.TextIOWrapper, max_bytes: int) -> None:
        self._text = text
        self._max_bytes = max_bytes
        self._record_bytes = 0
        self.lines_read = 0
        self.record: list[str] = []

    def start_record(self) -> int:
        """Forget the previous record; the line number the next one starts on."""
        self.record.clear()
        self._record_bytes = 0
        return self.lines_read + 1

    def __iter__(self) -> _BoundedLines:
        return self

    def __next__(self) -> str:
        line = self._text.readline(self._max_bytes + 1)
        if not line:
            raise StopIteration
        self.lines_read += 1
        self.record.append(line)
        self._record_bytes += len(line) if line.isascii() else len(line.encode("utf-8", "surrogateescape"))
        if self._record_bytes <= self._max_bytes:
            return line
        while line and not line.endswith(("\n", "\r")):
            line = self._text.readline(self._max_bytes + 1)
        raise _RecordTooLong(f"record longer than {self._max_bytes} bytes (CSV_MAX_RECORD_BYTES); skipped")


def _convert(line_number: int, values: list[str], *, first: bool) -> SessionRow | None:
    """Turn one non-blank record's trimmed fields into a row; ``None`` for the header row."""
    if len(values) > len(COLUMNS):
        raise _InvalidRecord(f"expected at most {len(COLUMNS)} columns, found {len(values)}")
    values += [""] * (len(COLUMNS) - len(values))
    if _is_header(values):
        if first:
            return None
        raise _InvalidRecord("a header row after the first record")
    warnings: list[FieldWarning] = []
    # Whole-record checks in C first: the column-by-column loops run only for records that need them.
    joined = "".join(values)
    if not joined.isascii():
        _decode_fallback(line_number, values, warnings)
        joined = "".join(values)
    if (
        "\x00" in joined
        or not all(map(values.__getitem__, _REQUIRED_INDICES))
        or any(map(operator.gt, map(len, values), _MAX_LENGTHS))
    ):
        _check_required(values)
        _check_optional_text(line_number, values, warnings)
    converted: list[Any] = [value or None for value in values]
    # The hashed form: fields joined by NUL, which no field holds, numbers as their repr so that "1.50" and
    # "1.5" agree. It is unambiguous because a field is "" exactly when its value is None.
    canonical = values.copy()
    for index, column, convert in _NUMBER_CONVERTERS:
        try:
            number = converted[index] = convert(column, values[index])
        except _InvalidField as exc:
            warnings.append(_warning(line_number, column, str(exc), values[index]))
            number = converted[index] = None
        canonical[index] = "" if number is None else repr(number)
    converted.append(hashlib.sha256("\x00".join(canonical).encode("utf-8")).hexdigest())
    converted.append(tuple(warnings))
    return SessionRow(line_number, *converted)


def _is_header(values: list[str]) -> bool:
    if values[0].casefold() in _HEADER_NAMES[0]:
        return True
    return values[1].casefold() in _HEADER_NAMES[1] and values[2].casefold() in _HEADER_NAMES[2]


def _decode_fallback(line_number: int, values: list[str], warnings: list[FieldWarning]) -> None:
    """Read the undecodable bytes of each field (lone surrogates here) as Windows-1252, with a warning."""
    for column in COLUMNS:
        value = values[column.index]
        if value.isascii() or not _UNDECODED.search(value):
            continue
        values[column.index] = value = value.translate(_WINDOWS_1252)
        reason = f"{column.label}: not valid UTF-8; its undecodable bytes were read as Windows-1252"
        warnings.append(_warning(line_number, column, reason, value))


def _check_required(values: list[str]) -> None:
    """Refuse a required field that is empty, over its cap or holds a NUL: the row cannot be a session."""
    for index in _REQUIRED_INDICES:
        column, value = COLUMNS[index], values[index]
        if not value:
            raise _InvalidField(column, "is empty")
        if "\x00" in value:
            raise _InvalidField(column, "contains a NUL character")
        if column.max_length is not None and len(value) > column.max_length:
            raise _InvalidField(column, f"{len(value)} characters, over the limit of {column.max_length}")


def _check_optional_text(line_number: int, values: list[str], warnings: list[FieldWarning]) -> None:
    """Empty an optional field that holds a NUL or is over its cap, with a warning: the row is kept."""
    for column in _OPTIONAL_TEXT:
        value = values[column.index]
        if "\x00" in value:
            problem = "contains a NUL character"
        elif column.max_length is not None and len(value) > column.max_length:
            problem = f"{len(value)} characters, over the limit of {column.max_length}"
        else:
            continue
        warnings.append(_warning(line_number, column, f"{column.label}: {problem}", value))
        values[column.index] = ""


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
_OPTIONAL_TEXT = tuple(column for column in COLUMNS if column.kind is ColumnKind.TEXT)
_MAX_LENGTHS = tuple(sys.maxsize if column.max_length is None else column.max_length for column in COLUMNS)
_NUMBER_CONVERTERS: tuple[tuple[int, Column, Callable[[Column, str], int | float | None]], ...] = tuple(
    (column.index, column, _integer if column.kind is ColumnKind.INTEGER else _real)
    for column in COLUMNS
    if column.kind in (ColumnKind.INTEGER, ColumnKind.REAL)
)
#: ``surrogateescape`` makes each undecodable byte 0x80-0xFF a U+DC80-U+DCFF; this reads it as Windows-1252.
_WINDOWS_1252 = {
    0xDC00 + byte: bytes([byte]).decode("cp1252", errors="replace") for byte in range(0x80, 0x100)
}
_UNDECODED = re.compile("[\udc80-\udcff]")
_WARNING_EXCERPT_LENGTH = 100


def _warning(line_number: int, column: Column, reason: str, value: str) -> FieldWarning:
    excerpt = redact(value[: _WARNING_EXCERPT_LENGTH * 2])[:_WARNING_EXCERPT_LENGTH]
    return FieldWarning(line_number, column.field, reason, excerpt.replace("\x00", "\ufffd"))


def _show(value: str) -> str:
    """Quote a field value for a reason, shortened and masked: reasons are read by people, not parsed."""
    value = redact(value[: _SHOWN_VALUE_LENGTH * 4])
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
    text = redact(text[: _EXCERPT_LENGTH * 2].rstrip("\r\n"))[:_EXCERPT_LENGTH]
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\x00", "\ufffd")
