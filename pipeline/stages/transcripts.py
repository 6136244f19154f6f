"""Fetching the transcripts of a chunk of sessions: bounded concurrency over one shared HTTP client.

Each fetch ends in exactly one :class:`TranscriptOutcome`; nothing here touches the database, so the stage
can fetch a whole chunk in parallel and then record every outcome in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from pipeline import metrics
from pipeline.errors import PipelineError
from pipeline.sources.credentials import Credentials
from pipeline.sources.http_fetch import Fetcher, FetchError, FetchLimits
from pipeline.sources.transcript_format import decode_transcript

__all__ = ["TranscriptOutcome", "TranscriptRequest", "fetch_transcripts", "transcript_limits"]

Key = TypeVar("Key")


@dataclass(frozen=True, slots=True)
class TranscriptRequest:
    """A transcript URL with the company's scoped credentials and private-network rule (``None``: default)."""

    url: str
    credentials: Credentials | None = None
    allow_private: bool | None = None


@dataclass(frozen=True, slots=True)
class TranscriptOutcome:
    """The text of a transcript, or why there is none; a transient ``failure`` may pass on a later try."""

    text: str | None
    error: str | None = None
    failure: PipelineError | None = None
    bytes_read: int = 0
    warnings: tuple[str, ...] = ()


def transcript_limits(*, timeout_ms: int, max_bytes: int, allow_private: bool) -> FetchLimits:
    seconds = timeout_ms / 1000
    return FetchLimits(
        connect_timeout=min(5.0, seconds),
        read_timeout=min(30.0, seconds),
        total_timeout=seconds,
        max_bytes=max_bytes,
        allow_private=allow_private,
        user_agent="LiveDash-Transcript-Fetcher/1.0",
    )


def _fetch_one(fetcher: Fetcher, request: TranscriptRequest) -> TranscriptOutcome:
    started = time.monotonic()
    try:
        with fetcher.stream(
            request.url, credentials=request.credentials, allow_private=request.allow_private
        ) as response:
            data = b"".join(response.iter_bytes())
    except FetchError as exc:
        return TranscriptOutcome(None, exc.reason, failure=exc)
    metrics.TRANSCRIPT_FETCH_DURATION.observe(time.monotonic() - started)
    metrics.TRANSCRIPT_FETCH_BYTES.observe(len(data))
    decoded = decode_transcript(data)
    if not decoded.text.strip():
        return TranscriptOutcome(None, "Empty transcript content", bytes_read=len(data))
    return TranscriptOutcome(decoded.text.strip(), bytes_read=len(data), warnings=decoded.warnings)


def fetch_transcripts(
    fetcher: Fetcher, requests: Mapping[Key, TranscriptRequest], *, concurrency: int
) -> dict[Key, TranscriptOutcome]:
    """Fetch every request, at most ``concurrency`` at once; keys of the result are those of ``requests``."""
    if not requests:
        return {}
    with ThreadPoolExecutor(
        max_workers=min(concurrency, len(requests)), thread_name_prefix="transcript"
    ) as pool:
        futures = {key: pool.submit(_fetch_one, fetcher, request) for key, request in requests.items()}
        return {key: future.result() for key, future in futures.items()}
