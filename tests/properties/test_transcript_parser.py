"""Properties of the transcript decoder and parser over arbitrary input (hypothesis).

Whatever the bytes: decoding and parsing never raise, every message is well formed and within the bounds,
and well-formed turns around a broken stretch of text all come out, in order.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.sources.transcript_format import (
    MAX_WARNINGS,
    ParsedTranscript,
    decode_transcript,
    parse_transcript,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

#: Input shaped like a transcript often enough to reach every branch: role words, brackets, line ends.
_PIECES = st.sampled_from(
    [
        "User: ",
        "assistant:",
        "Bot: ",
        "Supervisor: ",
        "[30.04.2025 11:38:14] ",
        "[99.99.2025 11:38] ",
        "[2025-05-01T07:07:00Z]",
        "[",
        "]",
        "https://x",
        "\n",
        "\r\n",
        "\r",
        "\u2028",
        "\x00",
        "   ",
        "hello",
    ]
)
_TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=20)), max_size=40).map("".join)
_CONTENT = st.text(alphabet="abcdefghij XYZ?", min_size=1, max_size=30).map(str.strip).filter(bool)


def _check_well_formed(parsed: ParsedTranscript, max_messages: int | None) -> None:
    assert [message.order for message in parsed.messages] == list(range(len(parsed.messages)))
    for message in parsed.messages:
        assert message.content and message.content == message.content.strip()
        assert message.role in {"user", "assistant", "system", "unknown"}
        assert message.timestamp is None or message.timestamp.tzinfo is not None
    assert len(parsed.warnings) <= MAX_WARNINGS + 1
    if max_messages is not None:
        assert len(parsed.messages) <= max_messages
        assert parsed.truncated is None or len(parsed.messages) == max_messages


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.one_of(st.binary(max_size=400), _TEXT.map(lambda text: text.encode("utf-8", "surrogatepass"))))
def test_arbitrary_bytes_decode_and_parse_without_raising(data: bytes) -> None:
    # Given arbitrary bytes, some shaped like a transcript
    # When they are decoded and parsed
    decoded = decode_transcript(data)
    parsed = parse_transcript(decoded.text, AMSTERDAM)

    # Then the text holds no NUL and every message is well formed
    assert "\x00" not in decoded.text
    _check_well_formed(parsed, None)


@settings(max_examples=300, deadline=None, database=None)
@given(text=_TEXT, max_messages=st.integers(min_value=1, max_value=5))
def test_no_input_yields_more_messages_than_the_cap(text: str, max_messages: int) -> None:
    # Given arbitrary text and a cap on messages
    # When it is parsed under the cap
    parsed = parse_transcript(text, AMSTERDAM, max_messages=max_messages)

    # Then there are at most that many messages, and exactly that many when it says it stopped early
    _check_well_formed(parsed, max_messages)
    # And what it kept is what parsing without the cap gives first
    assert parsed.messages == parse_transcript(text, AMSTERDAM).messages[: len(parsed.messages)]


@settings(max_examples=300, deadline=None, database=None)
@given(
    before=st.lists(st.tuples(st.sampled_from(["User", "Assistant"]), _CONTENT), min_size=1, max_size=4),
    broken=_TEXT,
    after=st.lists(st.tuples(st.sampled_from(["User", "Assistant"]), _CONTENT), min_size=1, max_size=4),
)
def test_well_formed_turns_around_a_broken_stretch_all_come_out_in_order(
    before: list[tuple[str, str]], broken: str, after: list[tuple[str, str]]
) -> None:
    # Given well-formed timestamped turns, then arbitrary text on lines of its own, then more turns
    def lines(turns: list[tuple[str, str]]) -> list[str]:
        return [
            f"[30.04.2025 11:{minute:02d}:00] {role}: {content}"
            for minute, (role, content) in enumerate(turns)
        ]

    text = "\n".join([*lines(before), broken, *lines(after)])

    # When it is parsed
    parsed = parse_transcript(text, AMSTERDAM)

    # Then every well-formed turn is a message, in order, its text first in its content (the broken text
    # may continue the turn before it, or become messages of its own)
    _check_well_formed(parsed, None)
    expected = [(role.lower(), content) for role, content in [*before, *after]]
    found = iter(parsed.messages)
    for role, content in expected:
        assert any(
            message.role == role and message.timestamp is not None and message.content.startswith(content)
            for message in found
        ), (role, content)
