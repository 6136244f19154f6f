"""Decoding transcript bytes and parsing the text into ordered messages with canonical roles."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pipeline.sources.transcript_format import (
    MAX_WARNINGS,
    ROLE_SYNONYMS,
    DecodedTranscript,
    ParsedMessage,
    ParsedTranscript,
    count_user_messages,
    decode_transcript,
    parse_transcript,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

#: The shape of docs/import-processing.md, with the times of a sample session (01.05.2025 12:11-12:14, CEST).
SAMPLE = (
    "[01.05.2025 12:11:18] User: whats up\n"
    "[01.05.2025 12:11:21] Assistant: Hallo! Waarmee kan ik je helpen?\n"
    "[01.05.2025 12:12:40] User: Spreek je ook turks?\n"
    "[01.05.2025 12:12:44] Assistant: Evet, Türkçe konuşabilirim.\n"
)


def parse(text: str) -> ParsedTranscript:
    return parse_transcript(text, AMSTERDAM)


def shape(parsed: ParsedTranscript) -> list[tuple[str, str]]:
    """The messages as (role, content), in order."""
    return [(message.role, message.content) for message in parsed.messages]


def cest(day: int, month: int, hour: int, minute: int, second: int) -> datetime:
    """A wall-clock time of May 2025 in Amsterdam (UTC+2), in UTC."""
    return datetime(2025, month, day, hour - 2, minute, second, tzinfo=UTC)


# Parsing: the ordinary shape


def test_the_sample_transcript_parses_into_ordered_messages_with_utc_timestamps() -> None:
    # Given a transcript in the export format, of a company in Amsterdam
    # When I parse it
    parsed = parse(SAMPLE)

    # Then I expect one message per line, lower-case roles, stripped content and the times in UTC
    assert parsed.messages == (
        ParsedMessage(0, "user", "whats up", cest(1, 5, 12, 11, 18)),
        ParsedMessage(1, "assistant", "Hallo! Waarmee kan ik je helpen?", cest(1, 5, 12, 11, 21)),
        ParsedMessage(2, "user", "Spreek je ook turks?", cest(1, 5, 12, 12, 40)),
        ParsedMessage(3, "assistant", "Evet, Türkçe konuşabilirim.", cest(1, 5, 12, 12, 44)),
    )
    assert parsed.warnings == ()


def test_a_message_over_several_lines_is_one_turn() -> None:
    # Given an assistant reply that runs over three lines
    text = (
        "[01.05.2025 12:11:18] User: Which stores are open?\n"
        "[01.05.2025 12:11:21] Assistant: These are open today:\n"
        "- Utrecht Centrum\n"
        "- Amsterdam Noord\n"
        "[01.05.2025 12:11:40] User: thanks\n"
    )

    # When I parse it
    parsed = parse(text)

    # Then I expect the continuation lines appended to the reply with newlines, not turns of their own
    assert shape(parsed) == [
        ("user", "Which stores are open?"),
        ("assistant", "These are open today:\n- Utrecht Centrum\n- Amsterdam Noord"),
        ("user", "thanks"),
    ]
    assert parsed.warnings == ()


def test_continuation_lines_keep_their_indentation_but_not_trailing_whitespace() -> None:
    # Given a reply with an indented continuation line and trailing spaces
    text = "Assistant: Steps:   \n    1. open the app  \n    2. log in\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect the indentation kept and the trailing spaces gone
    assert shape(parsed) == [("assistant", "Steps:\n    1. open the app\n    2. log in")]


def test_crlf_and_lone_cr_line_endings_split_lines() -> None:
    # Given a transcript with Windows and old Mac line endings
    text = "User: hi\r\nAssistant: hello\rthere\r\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect the same turns as with LF
    assert shape(parsed) == [("user", "hi"), ("assistant", "hello\nthere")]


def test_a_unicode_line_separator_inside_a_message_does_not_split_it() -> None:
    # Given a message holding U+2028, which str.splitlines would treat as a line end
    text = "User: one\u2028Assistant: still the user\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect one user message holding the separator
    assert shape(parsed) == [("user", "one\u2028Assistant: still the user")]


# Parsing: blank lines


def test_a_blank_line_inside_a_turn_is_one_paragraph_break() -> None:
    # Given a turn with one blank line, then three blank lines, between its paragraphs
    text = "Assistant: first\n\nsecond\n\n\n\nthird\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect each run of blank lines kept as a single empty line
    assert shape(parsed) == [("assistant", "first\n\nsecond\n\nthird")]


def test_blank_lines_at_the_start_and_end_of_a_turn_are_dropped() -> None:
    # Given turns separated by blank and whitespace-only lines, one turn starting on the line after its role
    text = "\n\nUser:\n\n  \nhello\n\n\t\n\nAssistant: hi\n\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect no leading or trailing blank lines in any content, and no warning for the blank lines
    assert shape(parsed) == [("user", "hello"), ("assistant", "hi")]
    assert parsed.warnings == ()


# Parsing: roles


@pytest.mark.parametrize(
    ("word", "role"),
    [
        ("User", "user"),
        ("USER", "user"),
        ("user", "user"),
        ("Assistant", "assistant"),
        ("assistant", "assistant"),
        ("System", "system"),
        ("SYSTEM", "system"),
        ("Customer", "user"),
        ("client", "user"),
        ("Human", "user"),
        ("Employee", "user"),
        ("Visitor", "user"),
        ("Bot", "assistant"),
        ("Agent", "assistant"),
        ("AI", "assistant"),
        ("Assistent", "assistant"),
        ("ChatBot", "assistant"),
    ],
)
def test_role_words_and_their_synonyms_map_to_one_casing(word: str, role: str) -> None:
    # Given a turn whose role is written as a synonym or in any case, with and without a bracket timestamp
    text = f"[01.05.2025 12:11:18] {word}: hi\n{word}: again\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect the canonical lower-case role for both turns
    assert shape(parsed) == [(role, "hi"), (role, "again")]
    assert parsed.warnings == ()


def test_the_synonym_table_maps_only_to_the_three_canonical_roles() -> None:
    # Given the role synonym table
    # When I look at what it maps to
    roles = set(ROLE_SYNONYMS.values())

    # Then I expect exactly the three roles the Message table holds, and keys already case-folded
    assert roles == {"user", "assistant", "system"}
    assert all(word == word.casefold() for word in ROLE_SYNONYMS)


def test_a_role_without_a_space_after_the_colon_is_still_a_role() -> None:
    # Given role lines without a space after the colon
    text = "User:hi\nAssistant:hello\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect two turns
    assert shape(parsed) == [("user", "hi"), ("assistant", "hello")]


def test_an_unknown_word_after_a_bracket_timestamp_starts_an_unknown_turn_kept_whole() -> None:
    # Given a turn by a speaker the format does not know
    text = (
        "[30.04.2025 11:38:14] User: can I talk to a person?\n"
        "[30.04.2025 11:38:14] Supervisor: hi, I am here\n"
        "[30.04.2025 11:38:20] User: great\n"
    )

    # When I parse it
    parsed = parse(text)

    # Then I expect an unknown turn holding the prefix, its timestamp kept, and a warning naming the line
    assert parsed.messages[1] == ParsedMessage(
        1, "unknown", "Supervisor: hi, I am here", datetime(2025, 4, 30, 9, 38, 14, tzinfo=UTC)
    )
    assert shape(parsed)[2] == ("user", "great")
    assert parsed.warnings == ("line 2: unknown role 'Supervisor': kept with role 'unknown'",)


def test_an_unknown_turn_over_several_lines_loses_only_trailing_whitespace() -> None:
    # Given an unknown speaker's turn with trailing spaces, running over two lines
    text = "[30.04.2025 11:38:14] Supervisor: hi   \nhow can I help?  \n"

    # When I parse it
    parsed = parse(text)

    # Then I expect both lines in the turn, the prefix kept, the trailing spaces gone
    assert shape(parsed) == [("unknown", "Supervisor: hi\nhow can I help?")]


def test_a_bracket_timestamp_without_a_role_starts_an_unknown_turn() -> None:
    # Given a timestamped line with no role prefix
    text = "User: hi\n[30.04.2025 11:38:14] connection lost\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect a turn of its own with role unknown, and a warning
    assert shape(parsed) == [("user", "hi"), ("unknown", "connection lost")]
    assert parsed.warnings == ("line 2: no role after the timestamp: kept with role 'unknown'",)


@pytest.mark.parametrize(
    "line",
    [
        "Note: the store closes at 8",
        "https://www.jumbo.com/winkels",
        "Supervisor: not a speaker without a bracket",
        "Customer service: a phrase, not a word",
        "Tijd: 12:30",
        "Averyveryverylongwordthatisnorole: text",
    ],
)
def test_a_word_and_colon_without_a_bracket_is_a_role_only_if_the_role_is_known(line: str) -> None:
    # Given an assistant turn whose second line starts with a word and a colon that is not a known role
    text = f"Assistant: Good to know:\n{line}\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect the line to continue the turn, without a warning
    assert shape(parsed) == [("assistant", f"Good to know:\n{line}")]
    assert parsed.warnings == ()


def test_a_url_after_a_bracket_timestamp_is_no_role() -> None:
    # Given a timestamped line that starts with a URL
    text = "[30.04.2025 11:38:14] https://www.jumbo.com\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect the URL as the content of an unknown turn, and the warning saying there was no role
    assert shape(parsed) == [("unknown", "https://www.jumbo.com")]
    assert parsed.warnings == ("line 1: no role after the timestamp: kept with role 'unknown'",)


def test_lines_without_a_bracket_get_no_timestamp() -> None:
    # Given turns without bracket timestamps, between turns with them
    text = "[30.04.2025 11:38:14] User: hi\nAssistant: hello\nUser: bye\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect timestamp None only for the lines without a bracket
    assert [message.timestamp for message in parsed.messages] == [
        datetime(2025, 4, 30, 9, 38, 14, tzinfo=UTC),
        None,
        None,
    ]


def test_bracket_timestamps_accept_every_timestamp_variant() -> None:
    # Given bracket timestamps in one-digit, dash, no-seconds and ISO spellings, padded with spaces
    text = "[1.5.2025 9:05:07] User: a\n[01-05-2025 09:06] Assistant: b\n[ 2025-05-01T07:07:00Z ] User: c\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect each read as a time in the company zone, or UTC where it says so
    assert [message.timestamp for message in parsed.messages] == [
        datetime(2025, 5, 1, 7, 5, 7, tzinfo=UTC),
        datetime(2025, 5, 1, 7, 6, 0, tzinfo=UTC),
        datetime(2025, 5, 1, 7, 7, 0, tzinfo=UTC),
    ]


def test_the_company_zone_decides_the_instant_of_a_bracket_timestamp() -> None:
    # Given the same transcript, for a company in New York
    # When I parse it in that zone
    parsed = parse_transcript("[30.04.2025 11:38:14] User: hi\n", ZoneInfo("America/New_York"))

    # Then I expect the time read as EDT (UTC-4)
    assert parsed.messages[0].timestamp == datetime(2025, 4, 30, 15, 38, 14, tzinfo=UTC)


# Parsing: brackets that are not timestamps


def test_an_unparseable_bracket_before_a_known_role_starts_a_turn_without_timestamp() -> None:
    # Given a turn whose bracket holds an impossible date
    text = "[30.04.2025 11:38:14] User: hi\n[31.04.2025 11:38:20] Assistant: hello\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect the turn kept with its role, no timestamp, and a warning naming the bracket and the reason
    assert parsed.messages[1] == ParsedMessage(1, "assistant", "hello", None)
    assert parsed.warnings == (
        "line 2: '[31.04.2025 11:38:20]' is not a timestamp: day 31 out of range for 2025-04; "
        "turn has no timestamp",
    )


def test_an_unparseable_bracket_without_a_known_role_is_text_of_the_current_turn() -> None:
    # Given a reply with a line starting with a bracket that is no timestamp
    text = "Assistant: Sources:\n[1] jumbo.com/winkels\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect the whole line kept in the reply, and a warning
    assert shape(parsed) == [("assistant", "Sources:\n[1] jumbo.com/winkels")]
    assert parsed.warnings == (
        "line 2: '[1]' is not a timestamp: unrecognised format (expected DD.MM.YYYY HH:mm[:ss] or ISO 8601); "
        "line kept as text",
    )


def test_a_bracket_that_never_closes_is_ordinary_text() -> None:
    # Given a reply with a line that opens a bracket on one line and closes it on the next
    text = "Assistant: see\n[the list\nbelow] for more\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect both lines in the reply, without a warning
    assert shape(parsed) == [("assistant", "see\n[the list\nbelow] for more")]
    assert parsed.warnings == ()


# Parsing: text that is not a turn


def test_text_before_the_first_turn_becomes_an_unknown_turn() -> None:
    # Given a transcript with a header before the first role line
    text = "Chat export\nsession ef6b43f6\n\nUser: hi\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect nothing lost: the header is the first message, with role unknown, and a warning
    assert parsed.messages == (
        ParsedMessage(0, "unknown", "Chat export\nsession ef6b43f6", None),
        ParsedMessage(1, "user", "hi", None),
    )
    assert parsed.warnings == ("line 1: text before the first turn kept with role 'unknown'",)


def test_text_without_any_role_is_one_unknown_message() -> None:
    # Given text with no turn at all
    text = "just some text\nover two lines\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect it all in one unknown message
    assert shape(parsed) == [("unknown", "just some text\nover two lines")]


def test_an_empty_turn_is_dropped_and_takes_no_order_number() -> None:
    # Given a transcript with two turns that say nothing
    text = "User: hi\n[30.04.2025 11:38:14] Assistant:   \n\nSystem:\nUser: still there?\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect them gone, order numbers without gaps, and a warning for each
    assert [(message.order, message.role) for message in parsed.messages] == [(0, "user"), (1, "user")]
    assert parsed.warnings == ("line 2: empty assistant turn dropped", "line 4: empty system turn dropped")


@pytest.mark.parametrize("text", ["", " ", "\n\n", " \t\r\n \n"])
def test_empty_or_whitespace_only_text_has_no_messages(text: str) -> None:
    # Given a transcript with no text
    # When I parse it
    parsed = parse(text)

    # Then I expect no messages and no warnings, and no exception
    assert parsed == ParsedTranscript((), ())


# Parsing: order and counting


def test_order_follows_the_file_not_the_timestamps() -> None:
    # Given a transcript whose timestamps go backwards
    text = "[01.05.2025 12:12:00] Assistant: second in time\n[01.05.2025 12:11:00] User: first in time\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect file order, numbered from 0
    assert [(message.order, message.content) for message in parsed.messages] == [
        (0, "second in time"),
        (1, "first in time"),
    ]


def test_count_user_messages_counts_only_the_user_role() -> None:
    # Given a transcript with user turns written as User, customer and client, and other roles
    text = "User: a\nAssistant: b\ncustomer: c\nSystem: d\nCLIENT: e\n[01.05.2025 12:00] Supervisor: f\n"

    # When I count its user messages
    count = count_user_messages(parse(text).messages)

    # Then I expect the three user turns, whatever they were called
    assert count == 3


def test_count_user_messages_of_nothing_is_zero() -> None:
    # Given no messages
    # When I count them
    # Then I expect zero
    assert count_user_messages(()) == 0


# Parsing: size


def test_a_one_megabyte_transcript_parses_completely() -> None:
    # Given a transcript of more than 1 MB: 10,000 exchanges, each reply over three lines with a blank one
    exchange = (
        "[01.05.2025 12:11:18] User: where is my order {n}?\n"
        "[01.05.2025 12:11:21] Assistant: Order {n} is on its way.\n"
        "\n"
        "Note: delivery between 18:00 and 20:00, see https://www.jumbo.com/bestellingen\n"
    )
    text = "".join(exchange.format(n=n) for n in range(10_000))
    assert len(text.encode()) > 1_000_000

    # When I parse it
    parsed = parse(text)

    # Then I expect every turn, in order, with its full content and no warnings
    assert len(parsed.messages) == 20_000
    assert count_user_messages(parsed.messages) == 10_000
    assert parsed.messages[-1] == ParsedMessage(
        19_999,
        "assistant",
        "Order 9999 is on its way.\n\nNote: delivery between 18:00 and 20:00, see https://www.jumbo.com/bestellingen",
        datetime(2025, 5, 1, 10, 11, 21, tzinfo=UTC),
    )
    assert parsed.warnings == ()


def test_a_one_megabyte_line_of_brackets_and_colons_parses() -> None:
    # Given pathological single lines: an unclosed bracket, and a megabyte of colons after a role
    text = "User: " + ":" * 1_000_000 + "\n" + "[" * 1_000_000 + "\n[" + "0" * 1_000_000 + "]\n"

    # When I parse it
    parsed = parse(text)

    # Then I expect one user turn holding all of it, and one warning with the long bracket shortened
    (message,) = parsed.messages
    assert message.role == "user"
    assert len(message.content) == 3 * 1_000_000 + 4
    (warning,) = parsed.warnings
    assert warning.startswith("line 3: '[0000") and len(warning) < 200


def test_warnings_are_capped() -> None:
    # Given a turn with far more bad brackets than warnings are kept for
    text = "User: hi\n" + "[x] y\n" * (MAX_WARNINGS + 25)

    # When I parse it
    parsed = parse(text)

    # Then I expect the first warnings kept, and one more that counts the rest
    assert len(parsed.warnings) == MAX_WARNINGS + 1
    assert parsed.warnings[-1] == "25 more warning(s) not shown"
    assert shape(parsed)[0][1].count("[x] y") == MAX_WARNINGS + 25


# Decoding


def test_valid_utf8_is_decoded_as_is() -> None:
    # Given a UTF-8 transcript with accents and emoji
    data = "User: café, Türkçe, 👋\n".encode()

    # When I decode it
    decoded = decode_transcript(data)

    # Then I expect the text unchanged and no warning
    assert decoded == DecodedTranscript("User: café, Türkçe, 👋\n", ())


def test_a_utf8_bom_is_dropped() -> None:
    # Given a UTF-8 transcript written with a byte order mark
    data = b"\xef\xbb\xbfUser: hi\n"

    # When I decode it
    decoded = decode_transcript(data)

    # Then I expect the text without the mark, so the first line still starts a turn, and no warning
    assert decoded == DecodedTranscript("User: hi\n", ())
    assert shape(parse(decoded.text)) == [("user", "hi")]


def test_windows_1252_bytes_are_decoded_with_a_warning() -> None:
    # Given a transcript saved as Windows-1252: "café" with é as the single byte 0xE9, and a euro sign (0x80)
    data = b"User: caf\xe9 \x80 5\n"

    # When I decode it
    decoded = decode_transcript(data)

    # Then I expect the characters Windows-1252 means, and a warning naming the first bad byte and its offset
    assert decoded.text == "User: café € 5\n"
    assert decoded.warnings == ("not valid UTF-8 (byte 0xe9 at offset 9): decoded as Windows-1252",)


def test_the_offset_of_a_bad_byte_counts_the_bom() -> None:
    # Given a file with a UTF-8 BOM whose body is not UTF-8
    data = b"\xef\xbb\xbfcaf\xe9"

    # When I decode it
    decoded = decode_transcript(data)

    # Then I expect the BOM dropped and the offset counted from the first byte of the file
    assert decoded == DecodedTranscript(
        "café", ("not valid UTF-8 (byte 0xe9 at offset 6): decoded as Windows-1252",)
    )


def test_bytes_windows_1252_leaves_undefined_are_read_as_latin1() -> None:
    # Given non-UTF-8 bytes including the five that Windows-1252 does not define
    data = b"\x81\x8d\x8f\x90\x9d caf\xe9"

    # When I decode it
    decoded = decode_transcript(data)

    # Then I expect every byte kept as a character: nothing is lost and no surrogate leaks out
    assert decoded.text == "\x81\x8d\x8f\x90\x9d café"
    assert decoded.text.encode("utf-8")


def test_nul_characters_are_removed_with_a_warning() -> None:
    # Given a transcript holding NUL characters, which PostgreSQL text cannot store
    data = b"User: h\x00i\x00\n"

    # When I decode it
    decoded = decode_transcript(data)

    # Then I expect them gone, and a warning counting them
    assert decoded == DecodedTranscript(
        "User: hi\n", ("removed 2 NUL character(s): PostgreSQL text cannot hold them",)
    )


def test_a_non_utf8_file_with_nuls_gets_both_warnings() -> None:
    # Given Windows-1252 bytes with a NUL in them
    data = b"caf\xe9\x00"

    # When I decode it
    decoded = decode_transcript(data)

    # Then I expect both repairs, each with its warning, in the order they were made
    assert decoded == DecodedTranscript(
        "café",
        (
            "not valid UTF-8 (byte 0xe9 at offset 3): decoded as Windows-1252",
            "removed 1 NUL character(s): PostgreSQL text cannot hold them",
        ),
    )


def test_empty_bytes_decode_to_empty_text() -> None:
    # Given an empty body
    # When I decode it
    # Then I expect empty text and no warning
    assert decode_transcript(b"") == DecodedTranscript("", ())
