from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.sources.csv_content import NotCsv, checked_csv_body
from pipeline.sources.http_fetch import PermanentFetchError

CSV = b"284c6849-51ba-41b8-8afd-c1a70e7bd997,30.04.2025 11:41:48,30.04.2025 11:41:48,31.176.221.57\r\n"


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("text/html", "HTML"),
        ("TEXT/HTML; charset=UTF-8", "HTML"),
        ("application/xhtml+xml", "HTML"),
        ("application/json", "JSON"),
        ("application/problem+json", "JSON"),
        ("text/xml", "XML"),
        ("application/soap+xml", "XML"),
        ("application/pdf", "PDF"),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "an Excel workbook"),
    ],
)
def test_a_content_type_naming_another_format_is_refused(content_type: str, kind: str) -> None:
    # Given a CSV body served under another format's content type
    # When it is checked
    # Then I expect it refused before any byte passes, naming the type, as a permanent fetch error
    with pytest.raises(NotCsv, match=f"^not a CSV: Content-Type .* \\({kind}\\)$") as refused:
        next(checked_csv_body(content_type, [CSV], status_code=200))
    assert isinstance(refused.value, PermanentFetchError)
    assert refused.value.status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/csv",
        "text/plain; charset=windows-1252",
        "application/octet-stream",
        "application/vnd.ms-excel",
    ],
)
def test_csv_and_neutral_content_types_pass_the_body_unchanged(content_type: str | None) -> None:
    # Given a CSV in chunks under a CSV or neutral content type (or none)
    chunks = [CSV[:10], b"", CSV[10:], CSV * 20]

    # When it is checked
    # Then I expect every byte, in order
    assert b"".join(checked_csv_body(content_type, chunks)) == b"".join(chunks)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "HTML"),
        (b"\xef\xbb\xbf\r\n  <html lang='en'>", "HTML"),
        (b'<?xml version="1.0"?><error/>', "XML or HTML"),
        (b'{"error": "forbidden"}', "JSON"),
        (b"  {\n  }", "JSON"),
        (b'[{"id": 1}]', "JSON"),
        (b"[]", "JSON"),
        (b"%PDF-1.4\n", "PDF"),
        (b"PK\x03\x04\x14\x00\x06\x00", "a ZIP archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "an OLE2 file"),
    ],
)
def test_first_bytes_of_another_format_are_refused(body: bytes, kind: str) -> None:
    # Given a body of another format served as text/plain, one byte per chunk
    chunks = [body[index : index + 1] for index in range(len(body))]

    # When it is checked
    # Then I expect it refused, naming what it looks like
    with pytest.raises(NotCsv, match=f"^not a CSV: the body starts like {kind}"):
        next(checked_csv_body("text/plain", chunks))


@pytest.mark.parametrize(
    "first_line",
    [
        b"{284c6849-51ba-41b8-8afd-c1a70e7bd997},30.04.2025 11:41:48,30.04.2025 11:41:48\n",
        b"[1] session,30.04.2025 11:41:48,30.04.2025 11:41:48\n",
        b"sessionId,startTimeRaw,endTimeRaw\n",
        b"",
    ],
    ids=["braced-guid", "bracketed-id", "header", "empty"],
)
def test_csv_that_merely_starts_with_a_bracket_passes(first_line: bytes) -> None:
    # Given a CSV whose first field starts with a brace or bracket, but no JSON; or an empty body
    # When it is checked
    # Then I expect it passed through
    assert b"".join(checked_csv_body(None, [first_line])) == first_line


def test_the_reason_shows_only_the_first_characters() -> None:
    # Given an HTML page carrying a token further in
    page = b"<html><body>token=s3cr3t-value-that-must-not-be-shown</body></html>"

    # When it is refused
    with pytest.raises(NotCsv) as refused:
        next(checked_csv_body("text/plain", [page]))

    # Then I expect the reason to show 20 characters at most
    assert "s3cr3t" not in refused.value.reason
    assert "'<html><body>token=s3'" in refused.value.reason


def test_the_body_is_still_streamed() -> None:
    # Given a long CSV body handed out chunk by chunk
    handed_out = 0

    def body() -> Iterator[bytes]:
        nonlocal handed_out
        for _ in range(10_000):
            handed_out += 1
            yield CSV

    # When the first chunk passes the check
    next(checked_csv_body("text/csv", body()))

    # Then only what the sniffing needs was read
    assert handed_out <= 1024 // len(CSV) + 1
