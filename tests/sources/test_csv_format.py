from __future__ import annotations

import dataclasses
import re
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import String

from pipeline.db.models import SessionImport
from pipeline.sources.csv_format import (
    COLUMNS,
    ColumnKind,
    RowError,
    SessionRow,
    parse_session_rows,
)

#: Four sample rows of a real export, verbatim.
SAMPLE = (
    "a068d62a-439b-4d70-924f-3d45ffba673b,30.04.2025 11:38:14,30.04.2025 11:38:14,31.176.221.57,BA,,1,,,,"
    "https://proto.notso.ai/jumbo/chats/a068d62a-439b-4d70-924f-3d45ffba673b.txt,2.051,6470,0.0009,,test\n"
    "284c6849-51ba-41b8-8afd-c1a70e7bd997,30.04.2025 11:41:48,30.04.2025 11:41:48,31.176.221.57,BA,english,1,"
    "happy,no,no,https://proto.notso.ai/jumbo/chats/284c6849-51ba-41b8-8afd-c1a70e7bd997.txt,3.977,6537,0.0010,"
    "Greeting,Good day\n"
    "ef6b43f6-e46f-4d6c-9bf7-3d8f3b658d40,01.05.2025 12:11:18,01.05.2025 12:14:53,31.176.221.57,BA,Dutch,8,"
    "excited,no,no,https://proto.notso.ai/jumbo/chats/ef6b43f6-e46f-4d6c-9bf7-3d8f3b658d40.txt,3.458,56027,0.0083,"
    "Onboarding,whats up\n"
    "e5c6d4d1-7a02-4c0e-9d93-214ea06d6764,01.05.2025 12:37:43,01.05.2025 12:37:43,31.176.221.57,BA,turkish,1,"
    "happy,no,no,https://proto.notso.ai/jumbo/chats/e5c6d4d1-7a02-4c0e-9d93-214ea06d6764.txt,3.004,6549,0.0010,"
    "Language inquiry,Spreek je ook turks?\n"
)

LEGACY_HEADER = ",".join(column.legacy_name for column in COLUMNS)


def parse(text: str | bytes) -> list[SessionRow | RowError]:
    data = text.encode() if isinstance(text, str) else text
    return list(parse_session_rows([data]))


def parse_one(text: str | bytes) -> SessionRow | RowError:
    (result,) = parse(text)
    return result


def fields_of(row: SessionRow | RowError) -> dict[str, Any]:
    """The row's converted fields, without the hash and the warnings."""
    assert isinstance(row, SessionRow), row
    values = row._asdict()
    del values["content_hash"], values["warnings"]
    return values


def warned(text: str | bytes) -> tuple[SessionRow, list[tuple[str, str, str]]]:
    """The one row of ``text``, and its warnings as (column, reason, value excerpt)."""
    row = parse_one(text)
    assert isinstance(row, SessionRow), row
    return row, [(warning.column, warning.reason, warning.value_excerpt) for warning in row.warnings]


def record(**values: str) -> str:
    """One CSV line: a valid minimal record, with the given columns (by field name) replaced."""
    fields = ["s-1", "30.04.2025 11:38:14", "30.04.2025 11:39:00"] + [""] * 13
    for column in COLUMNS:
        if column.field in values:
            fields[column.index] = values[column.field]
    return ",".join(fields) + "\n"


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_the_sample_rows_parse_exactly() -> None:
    # Given the sample rows of a real export
    # When I parse them
    rows = parse(SAMPLE)

    # Then I expect every field converted, "0.0010" as a float and empty fields as None
    assert [fields_of(row) for row in rows] == [
        {
            "line_number": 1,
            "external_session_id": "a068d62a-439b-4d70-924f-3d45ffba673b",
            "start_time_raw": "30.04.2025 11:38:14",
            "end_time_raw": "30.04.2025 11:38:14",
            "ip_address": "31.176.221.57",
            "country_code": "BA",
            "language": None,
            "messages_sent": 1,
            "sentiment_raw": None,
            "escalated_raw": None,
            "forwarded_hr_raw": None,
            "full_transcript_url": "https://proto.notso.ai/jumbo/chats/a068d62a-439b-4d70-924f-3d45ffba673b.txt",
            "avg_response_time_seconds": 2.051,
            "tokens": 6470,
            "tokens_eur": 0.0009,
            "category": None,
            "initial_message": "test",
        },
        {
            "line_number": 2,
            "external_session_id": "284c6849-51ba-41b8-8afd-c1a70e7bd997",
            "start_time_raw": "30.04.2025 11:41:48",
            "end_time_raw": "30.04.2025 11:41:48",
            "ip_address": "31.176.221.57",
            "country_code": "BA",
            "language": "english",
            "messages_sent": 1,
            "sentiment_raw": "happy",
            "escalated_raw": "no",
            "forwarded_hr_raw": "no",
            "full_transcript_url": "https://proto.notso.ai/jumbo/chats/284c6849-51ba-41b8-8afd-c1a70e7bd997.txt",
            "avg_response_time_seconds": 3.977,
            "tokens": 6537,
            "tokens_eur": 0.001,
            "category": "Greeting",
            "initial_message": "Good day",
        },
        {
            "line_number": 3,
            "external_session_id": "ef6b43f6-e46f-4d6c-9bf7-3d8f3b658d40",
            "start_time_raw": "01.05.2025 12:11:18",
            "end_time_raw": "01.05.2025 12:14:53",
            "ip_address": "31.176.221.57",
            "country_code": "BA",
            "language": "Dutch",
            "messages_sent": 8,
            "sentiment_raw": "excited",
            "escalated_raw": "no",
            "forwarded_hr_raw": "no",
            "full_transcript_url": "https://proto.notso.ai/jumbo/chats/ef6b43f6-e46f-4d6c-9bf7-3d8f3b658d40.txt",
            "avg_response_time_seconds": 3.458,
            "tokens": 56027,
            "tokens_eur": 0.0083,
            "category": "Onboarding",
            "initial_message": "whats up",
        },
        {
            "line_number": 4,
            "external_session_id": "e5c6d4d1-7a02-4c0e-9d93-214ea06d6764",
            "start_time_raw": "01.05.2025 12:37:43",
            "end_time_raw": "01.05.2025 12:37:43",
            "ip_address": "31.176.221.57",
            "country_code": "BA",
            "language": "turkish",
            "messages_sent": 1,
            "sentiment_raw": "happy",
            "escalated_raw": "no",
            "forwarded_hr_raw": "no",
            "full_transcript_url": "https://proto.notso.ai/jumbo/chats/e5c6d4d1-7a02-4c0e-9d93-214ea06d6764.txt",
            "avg_response_time_seconds": 3.004,
            "tokens": 6549,
            "tokens_eur": 0.001,
            "category": "Language inquiry",
            "initial_message": "Spreek je ook turks?",
        },
    ]


def test_the_row_attributes_follow_the_column_table() -> None:
    # Given the column table and the row class
    # When I compare the row's attributes with the table's field names
    attributes = list(SessionRow._fields)
    from_table = [re.sub(r"(?<!^)(?=[A-Z])", "_", column.field).lower() for column in COLUMNS]

    # Then I expect the 16 columns in table order, between the line number and the hash
    assert attributes == ["line_number", *from_table, "content_hash", "warnings"]
    assert [column.index for column in COLUMNS] == list(range(16))


def test_a_utf8_bom_is_ignored() -> None:
    # Given the sample behind a byte order mark
    # When I parse it
    # Then I expect the same rows as without it
    assert parse(b"\xef\xbb\xbf" + SAMPLE.encode()) == parse(SAMPLE)


def test_crlf_line_endings_parse_like_lf() -> None:
    # Given the sample with CRLF line endings
    # When I parse it
    # Then I expect the same rows
    assert parse(SAMPLE.replace("\n", "\r\n")) == parse(SAMPLE)


def test_lone_cr_line_endings_parse_like_lf() -> None:
    # Given the sample with old Mac line endings
    # When I parse it
    # Then I expect the same rows
    assert parse(SAMPLE.replace("\n", "\r")) == parse(SAMPLE)


def test_quoted_fields_hold_commas_quotes_and_newlines() -> None:
    # Given a record whose quoted fields span three lines, then a plain record
    text = (
        's-1,30.04.2025 11:38:14,30.04.2025 11:39:00,,,,,,,,,,,,"Language, inquiry","Hi ""Liza"",\r\n'
        "how are you?\r\n"
        'bye"\r\n' + record(externalSessionId="s-2")
    )

    # When I parse it
    first, second = parse(text)

    # Then I expect the quoted values intact and the next record on its own physical line
    assert isinstance(first, SessionRow)
    assert first.category == "Language, inquiry"
    assert first.initial_message == 'Hi "Liza",\r\nhow are you?\r\nbye'
    assert (first.line_number, second.line_number) == (1, 4)


def test_a_space_before_an_opening_quote_still_quotes() -> None:
    # Given a quoted field preceded and followed by spaces
    text = record(category=' "Language, inquiry" ')

    # When I parse it
    row = parse_one(text)

    # Then I expect one trimmed field
    assert isinstance(row, SessionRow)
    assert row.category == "Language, inquiry"


def test_every_field_is_trimmed() -> None:
    # Given fields padded with spaces and tabs, quoted or not
    text = record(
        externalSessionId="  s-1\t", countryCode=" BA ", messagesSent=" 3 ", initialMessage='"  hi  "'
    )

    # When I parse it
    row = parse_one(text)

    # Then I expect the values without the padding
    assert isinstance(row, SessionRow)
    assert (row.external_session_id, row.country_code, row.messages_sent, row.initial_message) == (
        "s-1",
        "BA",
        3,
        "hi",
    )


def test_missing_trailing_columns_are_empty() -> None:
    # Given a record with only its first three columns, and one with its first seven
    text = (
        "s-1,30.04.2025 11:38:14,30.04.2025 11:39:00\n"
        "s-2,30.04.2025 11:38:14,30.04.2025 11:39:00,1.2.3.4,BA,nl,2\n"
    )

    # When I parse them
    short, longer = parse(text)

    # Then I expect every missing column as None
    assert fields_of(short) == {
        "line_number": 1,
        "external_session_id": "s-1",
        "start_time_raw": "30.04.2025 11:38:14",
        "end_time_raw": "30.04.2025 11:39:00",
        **{name: None for name in list(fields_of(short))[4:]},
    }
    assert list(fields_of(longer).values())[4:9] == ["1.2.3.4", "BA", "nl", 2, None]


def test_more_than_sixteen_columns_is_an_error() -> None:
    # Given a record with 17 columns, then a good one
    text = record().rstrip("\n") + ",extra\n" + record(externalSessionId="s-2")

    # When I parse it
    error, row = parse(text)

    # Then I expect an error naming the count, and the next record parsed
    assert error == RowError(1, "expected at most 16 columns, found 17", text.splitlines()[0])
    assert isinstance(row, SessionRow)
    assert row.line_number == 2


def test_blank_lines_are_skipped() -> None:
    # Given records separated by empty and whitespace-only lines
    text = "\n" + record() + "\r\n   \n\t\n" + record(externalSessionId="s-2") + "\n"

    # When I parse it
    rows = parse(text)

    # Then I expect the two records only, with their physical line numbers
    assert [row.line_number for row in rows] == [2, 6]
    assert all(isinstance(row, SessionRow) for row in rows)


def test_a_line_of_bare_commas_is_not_blank() -> None:
    # Given a line of commas
    # When I parse it
    # Then I expect an error for its empty session id rather than a silent skip
    assert parse(",,,\n") == [RowError(1, "column 0 (externalSessionId): is empty", ",,,")]


@pytest.mark.parametrize(
    "header",
    [
        LEGACY_HEADER,
        LEGACY_HEADER.upper(),
        ",".join(column.field for column in COLUMNS),
        "sessionId,start,end",
        "  SESSION_ID  ",
        '"externalSessionId","startTimeRaw","endTimeRaw"',
        "id,Start_Time,END_TIME,ip",
    ],
)
def test_a_header_row_is_skipped(header: str) -> None:
    # Given a header row, after a blank line, above the sample
    text = "\n" + header + "\n" + SAMPLE

    # When I parse it
    rows = parse(text)

    # Then I expect the sample rows alone, on their physical lines
    assert rows == [
        row._replace(line_number=row.line_number + 2)
        if isinstance(row, SessionRow)
        else dataclasses.replace(row, line_number=row.line_number + 2)
        for row in parse(SAMPLE)
    ]


def test_a_header_row_after_the_first_record_is_an_error() -> None:
    # Given two files concatenated, the second with a header
    text = SAMPLE + LEGACY_HEADER + "\n" + SAMPLE

    # When I parse it
    results = parse(text)

    # Then I expect the header reported where it stands, not imported as a session
    assert results[4] == RowError(5, "a header row after the first record", LEGACY_HEADER)
    assert sum(isinstance(result, SessionRow) for result in results) == 8


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"externalSessionId": ""}, "column 0 (externalSessionId): is empty"),
        ({"externalSessionId": '"  "'}, "column 0 (externalSessionId): is empty"),
        ({"startTimeRaw": ""}, "column 1 (startTimeRaw): is empty"),
        ({"endTimeRaw": " "}, "column 2 (endTimeRaw): is empty"),
    ],
)
def test_the_session_id_and_times_are_required(values: dict[str, str], reason: str) -> None:
    # Given a record with an empty required field
    # When I parse it
    result = parse_one(record(**values))

    # Then I expect an error naming the column
    assert isinstance(result, RowError)
    assert result.reason == reason


def test_the_dates_are_not_parsed_here() -> None:
    # Given times in a format no parser knows
    # When I parse the record
    row = parse_one(record(startTimeRaw="yesterday", endTimeRaw="30/04/2025 11h39"))

    # Then I expect them kept raw, for the later stage that knows the company's time zone
    assert isinstance(row, SessionRow)
    assert (row.start_time_raw, row.end_time_raw) == ("yesterday", "30/04/2025 11h39")


@pytest.mark.parametrize(
    "column",
    [column for column in COLUMNS if column.kind is ColumnKind.REQUIRED_TEXT],
    ids=lambda column: column.field,
)
def test_each_required_column_is_capped(column: Any) -> None:
    # Given a value exactly at the column's limit, and one character over it
    limit = column.max_length
    at_limit, over_limit = "x" * limit, "x" * (limit + 1)

    # When I parse a record with each
    accepted = parse_one(record(**{column.field: at_limit}))
    refused = parse_one(record(**{column.field: over_limit}))

    # Then I expect the first kept whole and the second refused, naming the column and the limit
    assert isinstance(accepted, SessionRow)
    assert tuple(accepted)[column.index + 1] == at_limit
    assert refused == RowError(
        1,
        f"column {column.index} ({column.field}): {limit + 1} characters, over the limit of {limit}",
        record(**{column.field: over_limit}).rstrip("\n")[:500],
    )


@pytest.mark.parametrize(
    "column",
    [column for column in COLUMNS if column.kind is ColumnKind.TEXT],
    ids=lambda column: column.field,
)
def test_an_optional_text_over_its_cap_is_stored_as_null_with_a_warning(column: Any) -> None:
    # Given a value exactly at the column's limit, and one character over it
    limit = column.max_length
    at_limit, over_limit = "x" * limit, "x" * (limit + 1)

    # When I parse a record with each
    accepted = parse_one(record(**{column.field: at_limit}))
    kept, warnings = warned(record(**{column.field: over_limit}))

    # Then I expect the first kept whole, and the second row kept with that field null and a warning
    assert isinstance(accepted, SessionRow)
    assert tuple(accepted)[column.index + 1] == at_limit
    assert accepted.warnings == ()
    assert tuple(kept)[column.index + 1] is None
    assert kept.external_session_id == "s-1"
    assert warnings == [
        (
            column.field,
            f"column {column.index} ({column.field}): {limit + 1} characters, over the limit of {limit}",
            over_limit[:100],
        )
    ]


def test_the_caps_are_those_of_the_schema() -> None:
    # Given the column table
    # When I read its limits
    limits = {column.field: column.max_length for column in COLUMNS if column.max_length is not None}

    # Then each cap is the width of the SessionImport column it fills, or a chosen cap where that is text
    widths = {
        column.field: _column_width(column.field) for column in COLUMNS if column.max_length is not None
    }
    chosen_caps = {"externalSessionId": 255, "fullTranscriptUrl": 8192, "initialMessage": 65536}
    assert limits == {**widths, **chosen_caps}
    assert all(width is not None for field, width in widths.items() if field not in chosen_caps)
    assert {column.field for column in COLUMNS if column.kind is ColumnKind.INTEGER} == {
        "messagesSent",
        "tokens",
    }
    assert {column.field for column in COLUMNS if column.kind is ColumnKind.REAL} == {
        "avgResponseTimeSeconds",
        "tokensEur",
    }


def test_zero_stays_zero() -> None:
    # Given zeros in every numeric column, in several spellings
    text = record(messagesSent="0", avgResponseTimeSeconds="0", tokens="000", tokensEur="0.0000")

    # When I parse it
    row = parse_one(text)

    # Then I expect zeros, not None ("0" is a number, not "unknown")
    assert isinstance(row, SessionRow)
    assert (row.messages_sent, row.avg_response_time_seconds, row.tokens, row.tokens_eur) == (0, 0.0, 0, 0.0)


def test_empty_numbers_are_none() -> None:
    # Given a record with its numeric columns empty
    # When I parse it
    row = parse_one(record())

    # Then I expect None in each
    assert isinstance(row, SessionRow)
    assert (row.messages_sent, row.avg_response_time_seconds, row.tokens, row.tokens_eur) == (None,) * 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7", 7), ("007", 7), ("+5", 5), ("-0", 0), ("2147483647", 2147483647)],
)
def test_integers_are_base_10(text: str, expected: int) -> None:
    # Given an integer spelt in base 10
    # When I parse it
    row = parse_one(record(messagesSent=text))

    # Then I expect its value
    assert isinstance(row, SessionRow)
    assert row.messages_sent == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("abc", "'abc' is not an integer"),
        ("1.5", "'1.5' is not an integer"),
        ("1e3", "'1e3' is not an integer"),
        ("1_000", "'1_000' is not an integer"),
        ("\u0663", "'\u0663' is not an integer"),
        ("0x1f", "'0x1f' is not an integer"),
        ("+", "'+' is not an integer"),
        ("-1", "'-1' is negative"),
        ("2147483648", "'2147483648' is larger than 2147483647"),
        ("9" * 5000, "'" + "9" * 40 + "…' is larger than 2147483647"),
        ('"1.234"', "'1.234' is not an integer"),
        ('"1,234"', "'1,234' is not an integer"),
        ("1 234", "'1 234' is not an integer"),
        ("€12", "'€12' is not an integer"),
        ("12 EUR", "'12 EUR' is not an integer"),
        ("NaN", "'NaN' is not an integer"),
        ("inf", "'inf' is not an integer"),
    ],
)
def test_a_bad_integer_is_stored_as_null_with_a_warning(text: str, problem: str) -> None:
    # Given a bad value in an integer column
    # When I parse it
    row, warnings = warned(record(tokens=text))

    # Then I expect the row kept, the field null, and a warning naming the column, the value and the problem
    assert (row.external_session_id, row.tokens) == ("s-1", None)
    assert warnings == [("tokens", f"column 12 (tokens): {problem}", text.strip('"')[:100])]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2.051", 2.051), ("0.0010", 0.001), (".5", 0.5), ("5.", 5.0), ("1e-3", 0.001), ("-0.0", 0.0)],
)
def test_reals_are_decimal_numbers(text: str, expected: float) -> None:
    # Given a decimal number
    # When I parse it
    row = parse_one(record(avgResponseTimeSeconds=text))

    # Then I expect its value
    assert isinstance(row, SessionRow)
    assert row.avg_response_time_seconds == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("abc", "'abc' is not a finite decimal number"),
        ("NaN", "'NaN' is not a finite decimal number"),
        ("nan", "'nan' is not a finite decimal number"),
        ("inf", "'inf' is not a finite decimal number"),
        ("-Infinity", "'-Infinity' is not a finite decimal number"),
        ("1e400", "'1e400' is not a finite decimal number"),
        ("1_0.5", "'1_0.5' is not a finite decimal number"),
        ('"0,5"', "'0,5' is not a finite decimal number"),
        ('"1.234,5"', "'1.234,5' is not a finite decimal number"),
        ('"1,234.5"', "'1,234.5' is not a finite decimal number"),
        ("€0.001", "'€0.001' is not a finite decimal number"),
        ("$0.001", "'$0.001' is not a finite decimal number"),
        ("0.001 EUR", "'0.001 EUR' is not a finite decimal number"),
        ("-0.5", "'-0.5' is negative"),
        ("1e39", "'1e39' is out of range for a PostgreSQL real"),
        ("1e-50", "'1e-50' is out of range for a PostgreSQL real"),
    ],
)
def test_a_bad_real_is_stored_as_null_with_a_warning(text: str, problem: str) -> None:
    # Given a bad value in a real column
    # When I parse it
    row, warnings = warned(record(tokensEur=text))

    # Then I expect the row kept, the field null, and a warning naming the column, the value and the problem
    shown = text.strip('"')
    assert (row.external_session_id, row.tokens_eur) == ("s-1", None)
    assert warnings == [("tokensEur", f"column 13 (tokensEur): {problem}", shown)]


def test_an_unquoted_decimal_comma_makes_a_seventeenth_column() -> None:
    # Given "0,5" unquoted: it spills into the next column
    # When I parse it
    result = parse_one(record(tokensEur="0,5"))

    # Then I expect the row refused for its column count, as the columns after it cannot be trusted
    assert isinstance(result, RowError)
    assert result.reason == "expected at most 16 columns, found 17"


def test_a_nul_character_in_the_session_id_is_an_error() -> None:
    # Given a record with a NUL in its session id, then a good one
    text = record(externalSessionId="s\x001") + record(externalSessionId="s-2")

    # When I parse it
    error, row = parse(text)

    # Then I expect an error for the first, with a storable excerpt, and the second parsed
    assert isinstance(error, RowError)
    assert error.reason == "column 0 (externalSessionId): contains a NUL character"
    assert error.raw_excerpt.startswith("s\ufffd1,")
    assert isinstance(row, SessionRow)


def test_a_nul_character_in_an_optional_field_nulls_that_field() -> None:
    # Given a record with a NUL in its initial message
    # When I parse it
    row, warnings = warned(record(initialMessage="hi\x00there"))

    # Then I expect the row kept without its initial message, and a storable warning
    assert (row.external_session_id, row.initial_message) == ("s-1", None)
    assert warnings == [
        ("initialMessage", "column 15 (initialMessage): contains a NUL character", "hi\ufffdthere")
    ]


def test_a_latin1_initial_message_is_read_as_windows_1252_with_a_warning() -> None:
    # Given an Excel export's row: its initial message in Latin-1, between two UTF-8 rows
    data = (
        record().encode()
        + record(externalSessionId="s-2", initialMessage='"Goedendag, één vraag: déjà vu"').encode("latin-1")
        + record(externalSessionId="s-3", initialMessage="één").encode()
    )

    # When I parse it
    first, latin, last = parse(data)

    # Then I expect all three rows, the Latin-1 text read right, and a warning for that field alone
    assert isinstance(first, SessionRow)
    assert isinstance(latin, SessionRow)
    assert isinstance(last, SessionRow)
    assert latin.initial_message == "Goedendag, één vraag: déjà vu"
    assert [(warning.line_number, warning.column) for warning in latin.warnings] == [(2, "initialMessage")]
    assert latin.warnings[0].reason == (
        "column 15 (initialMessage): not valid UTF-8; its undecodable bytes were read as Windows-1252"
    )
    assert (last.initial_message, last.warnings) == ("één", ())


def test_the_fallback_is_per_field_and_never_garbles_valid_utf8() -> None:
    # Given one field in UTF-8 and another in Windows-1252 in the same record, and a field mixing both
    data = b",".join(
        [b"s-1", b"30.04.2025 11:38:14", b"30.04.2025 11:39:00", b"", b"", "türkçe".encode(), b"", b"", b"",
         b"", b"", b"", b"", b"", "caf\u00e9".encode("cp1252") + b" \x80 \x81",
         "€ ok ".encode() + b"\x93quoted\x94"]
    ) + b"\n"  # fmt: skip

    # When I parse it
    row, warnings = warned(data)

    # Then I expect the UTF-8 field unchanged, the others read as Windows-1252 around their valid UTF-8
    assert row.language == "türkçe"
    assert row.category == "café € \ufffd"
    assert row.initial_message == "€ ok \u201cquoted\u201d"
    assert [column for column, _, _ in warnings] == ["category", "initialMessage"]


def test_valid_utf8_is_kept_even_a_replacement_character() -> None:
    # Given multi-byte characters, including a U+FFFD that really is in the file
    text = record(initialMessage="Spreek je ook türks? 😀 \ufffd", language="简体中文")

    # When I parse it
    row = parse_one(text)

    # Then I expect the text unchanged
    assert isinstance(row, SessionRow)
    assert (row.initial_message, row.language) == ("Spreek je ook türks? 😀 \ufffd", "简体中文")


def test_an_oversized_field_is_an_error_and_parsing_goes_on() -> None:
    # Given a field longer than the csv module allows, then a good record
    text = record(initialMessage="x" * 200_000) + record(externalSessionId="s-2")

    # When I parse it
    error, row = parse(text)

    # Then I expect an error for the first record, its excerpt cut to 500 characters, and the second parsed
    assert isinstance(error, RowError)
    assert error.reason.startswith("malformed CSV: field larger than field limit")
    assert len(error.raw_excerpt) == 500
    assert isinstance(row, SessionRow)
    assert row.line_number == 2


def test_the_hash_is_stable_for_equal_content() -> None:
    # Given the same record on another line, and with numbers spelt differently
    same = parse(record(avgResponseTimeSeconds="1.5", tokens="12"))[0]
    moved = parse("\n\n" + record(avgResponseTimeSeconds="1.50", tokens="012"))[0]

    # When I compare their hashes
    # Then I expect them equal: the hash is of the content, not of its spelling or position
    assert isinstance(same, SessionRow)
    assert isinstance(moved, SessionRow)
    assert same.content_hash == moved.content_hash
    assert re.fullmatch(r"[0-9a-f]{64}", same.content_hash)


@pytest.mark.parametrize("column", COLUMNS, ids=lambda column: column.field)
def test_the_hash_changes_with_any_field(column: Any) -> None:
    # Given a record, and the same record with one field changed
    original = {"ipAddress": "1.2.3.4", "messagesSent": "1", "avgResponseTimeSeconds": "2.5", "category": "x"}
    changed = dict(original)
    changed[column.field] = {ColumnKind.INTEGER: "2", ColumnKind.REAL: "2.25"}.get(column.kind, "zz")

    # When I parse both
    before, after = parse(record(**original) + record(**changed))

    # Then I expect different hashes
    assert isinstance(before, SessionRow)
    assert isinstance(after, SessionRow)
    assert before.content_hash != after.content_hash


def test_the_hash_tells_which_column_a_value_is_in() -> None:
    # Given the same value in two neighbouring columns
    # When I parse both records
    first, second = parse(record(sentimentRaw="no") + record(escalatedRaw="no"))

    # Then I expect different hashes
    assert isinstance(first, SessionRow)
    assert isinstance(second, SessionRow)
    assert first.content_hash != second.content_hash


def test_the_excerpt_is_cut_to_500_characters() -> None:
    # Given a bad record longer than 500 characters
    text = record(externalSessionId="", initialMessage="y" * 2000)

    # When I parse it
    error = parse_one(text)

    # Then I expect its excerpt to be the first 500 characters of the record
    assert isinstance(error, RowError)
    assert error.raw_excerpt == text[:500]


def test_byte_chunk_boundaries_do_not_matter() -> None:
    # Given an input with a BOM, CRLFs, quoted newlines, multi-byte characters and an invalid byte
    data = (
        b"\xef\xbb\xbf"
        + SAMPLE.replace("\n", "\r\n").encode()
        + record(initialMessage='"caf\u00e9,\r\n\u20ac 5 \U0001f600"').encode()
        + record(language="t\xfcrk").encode("latin-1")
        + b"\r\n"
        + record(externalSessionId="last").encode()
    )
    whole = parse(data)

    # When I feed it in 1-byte and 7-byte chunks, and with empty chunks in between
    one_byte = list(parse_session_rows(chunked(data, 1)))
    seven_bytes = list(parse_session_rows(chunked(data, 7)))
    with_empties = list(parse_session_rows(part for chunk in chunked(data, 5) for part in (b"", chunk)))

    # Then I expect the same results each time
    assert len(whole) == 7
    assert one_byte == whole
    assert seven_bytes == whole
    assert with_empties == whole


def test_chunks_are_pulled_only_as_rows_are_consumed() -> None:
    # Given a source that counts how many chunks it handed out, one row per chunk
    handed_out = 0

    def source() -> Iterator[bytes]:
        nonlocal handed_out
        for number in range(100_000):
            handed_out += 1
            yield record(externalSessionId=f"s-{number}").encode()

    # When I take the first row
    first = next(parse_session_rows(source()))

    # Then I expect only a read-ahead's worth of chunks to have been read
    assert isinstance(first, SessionRow)
    assert handed_out < 2000


def test_an_error_from_the_source_propagates() -> None:
    # Given a source that fails after one record
    def source() -> Iterator[bytes]:
        yield record().encode()
        raise TimeoutError("download timed out")

    # When I parse it
    # Then I expect the source's own error, not a swallowed or replaced one
    with pytest.raises(TimeoutError, match="download timed out"):
        list(parse_session_rows(source()))


def test_parsing_streams_in_bounded_memory() -> None:
    # Given 40,000 rows (about 8 MB), handed out as the same 280-row block of about 56 kB, 143 times over
    block = "".join(
        f"{number:08d}-51ba-41b8-8afd-c1a70e7bd997,30.04.2025 11:41:48,30.04.2025 11:41:48,31.176.221.57,BA,"
        f"english,{number % 50},happy,no,no,https://proto.notso.ai/jumbo/chats/{number:08d}.txt,3.977,"
        f"{number},0.0010,Greeting,Good day\r\n"
        for number in range(280)
    ).encode()
    blocks = -(-40_000 // 280)

    # When I parse them all, keeping only a count
    tracemalloc.start()
    try:
        rows = sum(
            isinstance(result, SessionRow) for result in parse_session_rows(block for _ in range(blocks))
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    # Then I expect every row, with a peak far below the input's size (about 0.1 MB was measured; a parser
    # that held the file would pass 8 MB)
    assert rows == blocks * 280 >= 40_000
    assert peak < 1024 * 1024


def _snake(field: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", field).lower()


def _column_width(field: str) -> int | None:
    """The length of the SessionImport column that ``field`` fills; None for unbounded text."""
    column_type = SessionImport.__table__.c[_snake(field)].type
    assert isinstance(column_type, String), f"{field} fills a {column_type!r} column, not a string"
    return column_type.length


def test_url_credentials_never_reach_an_excerpt() -> None:
    # Given a refused record and an over-long URL, each with credentials in a URL
    refused = record(
        externalSessionId="",
        fullTranscriptUrl="https://alice:s3cret@chats.example/1.txt?X-Amz-Signature=abc123&page=2&token=t0k",
    )
    long_url = "https://bob:hunter2@chats.example/" + "a" * 9000

    # When I parse them
    error = parse_one(refused)
    _, warnings = warned(record(fullTranscriptUrl=long_url))

    # Then I expect the user and password masked in the row error's and the warning's excerpts
    assert isinstance(error, RowError)
    assert "https://alice:***@chats.example/1.txt?X-Amz-Signature=***&page=***&token=***" in error.raw_excerpt
    assert "s3cret" not in error.raw_excerpt and "abc123" not in error.raw_excerpt
    [(column, _, excerpt)] = warnings
    assert column == "fullTranscriptUrl"
    assert excerpt.startswith("https://bob:***@chats.example/aaa") and len(excerpt) == 100
    assert "hunter2" not in excerpt


def test_url_credentials_never_reach_a_reason() -> None:
    # Given a URL with a password shifted into a number column
    # When I parse it
    row, warnings = warned(record(tokens="http://u:pw@h/?token=abc"))

    # Then I expect the row kept without the number, and the value shown in the reason masked too
    assert row.tokens is None
    [(_, reason, excerpt)] = warnings
    assert reason == "column 12 (tokens): 'http://u:***@h/?token=***' is not an integer"
    assert excerpt == "http://u:***@h/?token=***"


def test_a_record_over_the_byte_bound_is_refused_and_the_next_line_parsed() -> None:
    # Given a record of 5,000 bytes (2,500 two-byte characters) between two good ones, and a 4,096-byte bound
    data = (
        record()
        + record(externalSessionId="big", initialMessage="é" * 2500)
        + record(externalSessionId="s-3")
    )

    # When I parse it in 100-byte chunks
    first, error, last = parse_session_rows(chunked(data.encode(), 100), max_record_bytes=4096)

    # Then I expect that record alone refused for its size, and its neighbours kept on their lines
    assert isinstance(first, SessionRow) and isinstance(last, SessionRow)
    assert error == RowError(
        2, "record longer than 4096 bytes (CSV_MAX_RECORD_BYTES); skipped", data.splitlines()[1][:500]
    )
    assert last.line_number == 3


def test_a_quoted_record_spanning_lines_counts_all_its_lines_against_the_bound() -> None:
    # Given a quoted initial message of 40 lines of 200 bytes each (8 kB), with a 4,096-byte bound
    message = '"' + "\n".join(["y" * 199] * 40) + '"'
    data = record(initialMessage=message) + record(externalSessionId="s-2")

    # When I parse it
    results = list(parse_session_rows([data.encode()], max_record_bytes=4096))

    # Then I expect the record refused once it is over, and the lines after the cut read as records of their
    # own (as after an over-long field): no good record after them is lost
    assert isinstance(results[0], RowError)
    assert results[0].reason.startswith("record longer than 4096 bytes")
    assert isinstance(results[-1], SessionRow)
    assert (results[-1].external_session_id, results[-1].line_number) == ("s-2", 41)
