"""Reading ``multipart/form-data`` bodies, the way the SDK uploads files.

FastAPI's own form support needs the python-multipart package, which this project does not depend on; an
upload form is simple enough to take apart here.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

__all__ = ["FormField", "parse_form"]


@dataclass(frozen=True, slots=True)
class FormField:
    """One form field; ``filename`` is set for file fields."""

    content: bytes
    filename: str | None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def parse_form(content_type: str, body: bytes) -> dict[str, FormField]:
    """The fields of a form by name (the last of a repeated name); ValueError if ``body`` is not a form."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise ValueError("expected a multipart/form-data body with a boundary")
    # A delimiter is a boundary at the start of a line; prefixing a line break lets the first one match too.
    sections = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise ValueError("the multipart body is incomplete")
    fields: dict[str, FormField] = {}
    for section in sections[1:-1]:
        _, line_break, part = section.partition(b"\r\n")
        head, blank_line, content = part.partition(b"\r\n\r\n")
        if not line_break or not blank_line:
            raise ValueError("a multipart section has no headers")
        disposition = Message()
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon and name.strip().lower() == "content-disposition":
                disposition["content-disposition"] = value.strip()
        field_name = disposition.get_param("name", header="content-disposition")
        if not isinstance(field_name, str):
            raise ValueError("a multipart section has no field name")
        fields[field_name] = FormField(content, disposition.get_filename())
    return fields
