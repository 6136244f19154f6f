"""Whether a fetched body is a CSV at all: by its Content-Type, then by its first bytes.

A login page served with 200 and ``text/html``, an API's JSON error, an XML fault, a PDF or a spreadsheet
saved as ``.xlsx`` would otherwise be parsed as CSV: a row error per line, and now and then a "session"
whose id is a fragment of markup. Such a body fails the fetch instead (:class:`NotCsv`, permanent: the next
tick tries again), before any row of it is stored.

Choices made here:

* Content types named as another format are refused: HTML, XHTML, JSON and ``+json``, XML and ``+xml``,
  PDF, ZIP and the Excel workbook. Anything else passes on to the sniffing, including ``text/plain``,
  ``application/octet-stream``, ``application/vnd.ms-excel`` (how many servers label ``.csv``) and none.
* The first bytes (after a UTF-8 BOM and whitespace) are refused when they open markup (``<``: no session id
  starts with it), a JSON object or array (``{"``, ``{}``, ``[{``, ``["``, ``[]``... but not ``{284c...}``, a
  braced GUID), a PDF (``%PDF-``), a ZIP (an ``.xlsx``) or an OLE2 file (an ``.xls``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from pipeline.sources.http_fetch import PermanentFetchError

__all__ = ["NotCsv", "checked_csv_body"]

#: Bytes looked at: enough to get past a BOM and blank lines to the first character that tells.
SNIFF_BYTES = 1024

_REFUSED_TYPES = {
    "text/html": "HTML",
    "application/xhtml+xml": "HTML",
    "application/json": "JSON",
    "text/json": "JSON",
    "application/xml": "XML",
    "text/xml": "XML",
    "application/pdf": "PDF",
    "application/zip": "a ZIP archive",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "an Excel workbook",
}

_SIGNATURES: tuple[tuple[re.Pattern[bytes], str], ...] = (
    (re.compile(rb"<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE), "HTML"),
    (re.compile(rb"<"), "XML or HTML"),
    (re.compile(rb"\{\s*(?:\"|\}|$)|\[\s*(?:[\[{\"\]]|$)"), "JSON"),
    (re.compile(rb"%PDF-"), "PDF"),
    (re.compile(rb"PK\x03\x04"), "a ZIP archive (an .xlsx workbook?)"),
    (re.compile(rb"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), "an OLE2 file (an .xls workbook?)"),
)

_BOM = b"\xef\xbb\xbf"


class NotCsv(PermanentFetchError):
    """The body is another format: its Content-Type or its first bytes say so."""


def checked_csv_body(
    content_type: str | None, chunks: Iterable[bytes], *, status_code: int | None = None
) -> Iterator[bytes]:
    """``chunks`` unchanged, once the Content-Type and the first bytes look like a CSV.

    Raises:
      NotCsv: Before the first chunk is yielded, naming the format found (with ``status_code``).
    """
    media_type = (content_type or "").partition(";")[0].strip().lower()
    kind = _REFUSED_TYPES.get(media_type)
    if kind is None and media_type.endswith(("+json", "+xml")):
        kind = "JSON" if media_type.endswith("+json") else "XML"
    if kind is not None:
        raise NotCsv(f"not a CSV: Content-Type {media_type} ({kind})", status_code)
    head = b""
    iterator = iter(chunks)
    for chunk in iterator:
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break
    _check_first_bytes(head, status_code)
    if head:
        yield head
    yield from iterator


def _check_first_bytes(head: bytes, status_code: int | None) -> None:
    start = head.removeprefix(_BOM).lstrip()[:SNIFF_BYTES]
    for signature, kind in _SIGNATURES:
        if signature.match(start):
            raise NotCsv(f"not a CSV: the body starts like {kind} ({_show(start)})", status_code)


def _show(start: bytes) -> str:
    """The first characters, for the reason: enough to recognise a page, too few to carry a secret."""
    return repr(start[:20].decode("utf-8", "replace"))
