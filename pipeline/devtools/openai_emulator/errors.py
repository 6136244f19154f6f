"""Errors in the real API's shape, ``{"error": {"message", "type", "param", "code"}}``.

The SDK turns them into ``openai.BadRequestError``, ``RateLimitError`` and the like by status code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["ApiError", "context_length_exceeded", "rate_limited", "server_error"]


class ApiError(Exception):
    """An error answer: raised anywhere below a route, turned into the HTTP response by the app."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def rate_limited(model: str, retry_after: float) -> ApiError:
    """A 429 asking to wait ``retry_after`` seconds, in both headers the SDK reads (milliseconds first)."""
    return ApiError(
        429,
        f"Rate limit reached for {model} in organization org-emulator on requests per min (RPM): "
        f"Limit 500, Used 500, Requested 1. Please try again in {retry_after:g}s.",
        type="requests",
        code="rate_limit_exceeded",
        headers={
            "retry-after": str(math.ceil(retry_after)),
            "retry-after-ms": str(round(retry_after * 1000)),
        },
    )


def server_error() -> ApiError:
    return ApiError(
        500,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
    )


def context_length_exceeded() -> ApiError:
    return ApiError(
        400,
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 "
        "tokens. Please reduce the length of the messages.",
        code="context_length_exceeded",
        param="messages",
    )
