"""The one redaction of the pipeline: what leaves the process (logs, API answers, metric labels) or is
stored (run and fetch errors) passes through :func:`redact` first.

Masked: the password of a URL (``amqp://user:***@host``), every value of a URL's query string
(``?X-Amz-Signature=***&token=***``: presigned URLs carry their credential there), ``key=value`` pairs whose
key names a credential (``password=***``, as in a libpq connection string), bearer and basic
``Authorization`` values, OpenAI keys, and the configured secrets themselves (:func:`register_secrets`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MASK", "redact", "register_secrets"]

MASK = "***"
#: The shortest configured secret masked by value (shorter ones would mask ordinary words).
MIN_REGISTERED_LENGTH = 4

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@")
_URL_QUERY = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#\"'<>]*\?)(?P<query>[^\s#\"'<>]+)")
_QUERY_VALUE = re.compile(r"(?P<key>[^&;=]+)=[^&;]*")
_CREDENTIAL_PAIR = re.compile(
    r"(?i)\b(?P<key>password|passwd|pwd|token|access_token|secret|api[_-]?key|signature|sig)=[^\s&;,\"']+"
)
#: After ``Authorization:`` any credential; elsewhere one with a digit or a sign, so that the words of a
#: sentence ("a valid bearer token", "basic authentication") stay.
_AUTHORIZATION = re.compile(
    r"(?i)(?P<scheme>\bauthorization:\s*(?:bearer|basic)|\b(?:bearer|basic)(?=\s+[A-Za-z]*(?:[0-9=]|[._~+/-][A-Za-z0-9])))"
    r"\s+[A-Za-z0-9._~+/=-]+"
)
_OPENAI_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{8,}")
_secrets: list[str] = []


def register_secrets(values: Iterable[str]) -> None:
    """Mask these values wherever they appear from now on (the configured secrets: replaces the list)."""
    _secrets[:] = sorted((value for value in values if len(value) >= MIN_REGISTERED_LENGTH), key=len)[::-1]


def _mask_query(match: re.Match[str]) -> str:
    query = _QUERY_VALUE.sub(lambda pair: f"{pair['key']}={MASK}", match["query"])
    return f"{match['head']}{query}"


def redact(text: str) -> str:
    """``text`` with every credential it may carry masked (see the module's description)."""
    for secret in _secrets:
        text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda match: f"{match['scheme']}{match['user']}:{MASK}@", text)
    text = _URL_QUERY.sub(_mask_query, text)
    text = _CREDENTIAL_PAIR.sub(lambda match: f"{match['key']}={MASK}", text)
    text = _AUTHORIZATION.sub(lambda match: f"{match['scheme']} {MASK}", text)
    return _OPENAI_KEY.sub(MASK, text)
