"""Properties of the CSV reader over generated input (hypothesis): whatever the bytes, it ends cleanly, stays
within its bounds, yields only what PostgreSQL can store, and never loses a well-formed row beside a broken
one."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.sources.csv_format import COLUMNS, ColumnKind, RowError, SessionRow, parse_session_rows

#: A small record bound, so that generated input crosses it often.
MAX_RECORD_BYTES = 2048

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

_SPECIAL = [b",", b'"', b"\n", b"\r", b"\r\n", b"\x00", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\x80", b" "]


def _storable(text: str) -> bool:
    """PostgreSQL text takes it: valid UTF-8 once encoded, and no NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _check_within_bounds(item: SessionRow | RowError) -> None:
    if isinstance(item, RowError):
        assert _storable(item.reason) and _storable(item.raw_excerpt)
        assert len(item.raw_excerpt) <= 500
        return
    values = tuple(item)[1:17]
    assert sum(len(str(value).encode()) for value in values if value is not None) <= MAX_RECORD_BYTES
    for column, value in zip(COLUMNS, values, strict=True):
        if column.kind is ColumnKind.REQUIRED_TEXT:
            assert value
        if isinstance(value, str):
            assert _storable(value) and value == value.strip()
            assert column.max_length is None or len(value) <= column.max_length
        elif isinstance(value, int):
            assert column.kind is ColumnKind.INTEGER and 0 <= value <= 2**31 - 1
        elif isinstance(value, float):
            assert column.kind is ColumnKind.REAL and math.isfinite(value) and value >= 0
    for warning in item.warnings:
        assert warning.line_number == item.line_number
        assert _storable(warning.reason) and _storable(warning.value_excerpt)
        assert len(warning.value_excerpt) <= 100


hostile_bytes = st.lists(st.one_of(st.binary(max_size=64), st.sampled_from(_SPECIAL)), max_size=80).map(
    b"".join
)


@PROPERTY_SETTINGS
@given(data=hostile_bytes, chunk_size=st.integers(min_value=1, max_value=97))
def test_arbitrary_bytes_never_raise_and_stay_within_bounds(data: bytes, chunk_size: int) -> None:
    # Given any bytes, cut into chunks of any size
    chunks = [data[start : start + chunk_size] for start in range(0, len(data), chunk_size)]

    # When they are parsed
    results = list(parse_session_rows(chunks, max_record_bytes=MAX_RECORD_BYTES))

    # Then nothing raised, lines only go forward, and every value is within its bounds and storable
    lines = [item.line_number for item in results]
    assert lines == sorted(lines) and len(set(lines)) == len(lines)
    for item in results:
        _check_within_bounds(item)
    # And chunking changes nothing
    assert results == list(parse_session_rows([data], max_record_bytes=MAX_RECORD_BYTES))


_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=30
).map(str.strip)
_number = st.one_of(st.just(""), st.integers(0, 10**6).map(str), st.floats(0, 1e6).map(repr))
_session_row = st.fixed_dictionaries(
    {
        "start": st.just("30.04.2025 11:38:14"),
        "ip": st.ip_addresses().map(str),
        "messages": _number,
        "category": _text.map(lambda text: text[:255]),
        "message": _text,
    }
)
#: A broken line: any bytes but a quote or a line break (a lone quote rightly swallows the lines after it).
_broken_line = st.one_of(
    st.binary(max_size=200).map(lambda data: data.translate(None, b'"\r\n')),
    st.integers(MAX_RECORD_BYTES, 3 * MAX_RECORD_BYTES).map(lambda size: b"x," * size),
    st.sampled_from([b",,,", b"\xff\xfe,\x00", b"<html><body>", b"a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r"]),
)


_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def _record(number: int, fields: dict[str, str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(
        [f"good-{number}", fields["start"], fields["start"], fields["ip"], "", "", fields["messages"],
         "", "", "", "", "", "", "", fields["category"], fields["message"]]
    )  # fmt: skip
    return buffer.getvalue().encode()


@PROPERTY_SETTINGS
@given(
    good=st.lists(_session_row, min_size=1, max_size=8),
    broken=st.lists(st.lists(_broken_line, max_size=3), min_size=9, max_size=9),
)
def test_a_well_formed_row_is_never_lost_beside_a_broken_one(
    good: list[dict[str, str]], broken: list[list[bytes]]
) -> None:
    # Given well-formed records with broken lines before, between and after them
    data = b""
    expected: dict[str, tuple[int, SessionRow]] = {}
    for number, fields in enumerate(good):
        for line in broken[number]:
            data += line + b"\n"
        record = _record(number, fields)
        line_number = len(_LINE_BREAK.findall(data)) + 1
        [alone] = parse_session_rows([record])
        assert isinstance(alone, SessionRow)
        expected[alone.external_session_id] = (line_number, alone)
        data += record
    for line in broken[-1]:
        data += line + b"\n"

    # When the whole is parsed
    results = list(parse_session_rows([data], max_record_bytes=MAX_RECORD_BYTES))

    # Then each well-formed record is there, on its line, exactly as it parses alone
    found = {item.external_session_id: item for item in results if isinstance(item, SessionRow)}
    for session_id, (line_number, alone) in expected.items():
        assert found[session_id] == alone._replace(
            line_number=line_number,
            warnings=tuple(dataclasses.replace(w, line_number=line_number) for w in alone.warnings),
        )
