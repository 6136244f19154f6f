"""Identifiers in the shapes the real API uses, so logs and databases see what production would send."""

from __future__ import annotations

import secrets
import string

__all__ = ["batch_id", "batch_request_id", "chat_completion_id", "file_id", "request_id"]

_ALPHANUMERIC = string.ascii_letters + string.digits


def _alphanumeric(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def chat_completion_id() -> str:
    return f"chatcmpl-{_alphanumeric(29)}"


def file_id() -> str:
    return f"file-{_alphanumeric(22)}"


def batch_id() -> str:
    return f"batch_{secrets.token_hex(16)}"


def batch_request_id() -> str:
    return f"batch_req_{secrets.token_hex(16)}"


def request_id() -> str:
    return f"req_{secrets.token_hex(16)}"
