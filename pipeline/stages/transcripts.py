"""Fetching the transcripts of a chunk of sessions: bounded concurrency over one shared HTTP client.

Each fetch ends in exactly one :class:`TranscriptOutcome`; nothing here touches the database, so the stage
can fetch a whole chunk in parallel and then record every outcome in one transaction.

The bodies of a chunk are held until that transaction, so a chunk reads at most ``max_chunk_bytes`` in all:
a fetch that would go past it stops with :class:`ChunkBytesExhausted`, transient, and its import is fetched
again later in another chunk. Each fetch ends by its own deadline (:mod:`pipeline.sources.deadlines`), so
the pool's threads, which Dramatiq's time limit cannot interrupt, never hold the chunk longer than that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from pipeline import metrics
from pipeline.errors import PipelineError
from pipeline.sources.credentials import Credentials
from pipeline.sources.http_fetch import Fetcher, FetchError, FetchLimits, TransientFetchError
from pipeline.sources.transcript_format import decode_transcript

__all__ = [
    "ChunkBytesExhausted",
    "TranscriptOutcome",
    "TranscriptRequest",
    "fetch_transcripts",
    "transcript_limits",
]

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


class ChunkBytesExhausted(TransientFetchError):
    """The chunk has read all the transcript bytes it may hold; this one is fetched again in a later chunk."""


class _ChunkBytes:
    """The transcript bytes a chunk's fetches may still read, shared by its threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._read = 0
        self._lock = threading.Lock()

    def take(self, count: int) -> None:
        """Count ``count`` more bytes, or raise without counting them if they do not fit."""
        with self._lock:
            if self._read + count > self.limit:
                raise ChunkBytesExhausted(
                    f"import chunk fetched more than {self.limit} bytes of transcripts: fetched again later"
                )
            self._read += count


def _fetch_one(fetcher: Fetcher, request: TranscriptRequest, budget: _ChunkBytes) -> TranscriptOutcome:
    started = time.monotonic()
    try:
        with fetcher.stream(
            request.url, credentials=request.credentials, allow_private=request.allow_private
        ) as response:
            # A declared length is taken before reading, so a body that cannot fit is not read at all, and
            # the bodies that fit are not cut short by others read in parallel.
            allowed = response.content_length or 0
            budget.take(allowed)
            pieces, read = [], 0
            for piece in response.iter_bytes():
                read += len(piece)
                if read > allowed:
                    budget.take(read - allowed)
                    allowed = read
                pieces.append(piece)
        data = b"".join(pieces)
        # The pieces go before the text is decoded: one copy of the body less at the peak.
        del pieces
    except FetchError as exc:
        return TranscriptOutcome(None, exc.reason, failure=exc)
    metrics.TRANSCRIPT_FETCH_DURATION.observe(time.monotonic() - started)
    metrics.TRANSCRIPT_FETCH_BYTES.observe(len(data))
    decoded = decode_transcript(data)
    if not decoded.text.strip():
        return TranscriptOutcome(None, "Empty transcript content", bytes_read=len(data))
    return TranscriptOutcome(decoded.text.strip(), bytes_read=len(data), warnings=decoded.warnings)


def fetch_transcripts(
    fetcher: Fetcher, requests: Mapping[Key, TranscriptRequest], *, concurrency: int, max_chunk_bytes: int
) -> dict[Key, TranscriptOutcome]:
    """Fetch every request, at most ``concurrency`` at once and ``max_chunk_bytes`` in all.

    The keys of the result are those of ``requests``.
    """
    if not requests:
        return {}
    budget = _ChunkBytes(max_chunk_bytes)
    with ThreadPoolExecutor(
        max_workers=min(concurrency, len(requests)), thread_name_prefix="transcript"
    ) as pool:
        futures = {
            key: pool.submit(_fetch_one, fetcher, request, budget) for key, request in requests.items()
        }
        return {key: future.result() for key, future in futures.items()}
