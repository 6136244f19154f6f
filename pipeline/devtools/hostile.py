"""Hostile transcripts, and one import-processing chunk of them measured in a process of its own.

Used by the tests of the stage's bounds and by ``bench/hostile_inputs.py``. The transcripts are served from
127.0.0.1 by the calling process, generated while they are sent, so that the measured process holds only
what the stage itself holds; its peak RSS (VmHWM) is the stage's, plus the interpreter and imports.

* :func:`flood_transcript`: the worst case of the issue: ``User: a`` turns, one every 8 bytes, to the size
  given (5 MiB, the default ``TRANSCRIPT_MAX_BYTES``, is 655,360 turns).
* :func:`normal_transcript`: ten timestamped turns of ordinary length, about 700 bytes.
"""

from __future__ import annotations

import multiprocessing
import resource
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from pipeline.db.engine import create_db_engine
from pipeline.db.enums import ProcessingStage
from pipeline.db.models import ChatSession, Company, Message, SessionImport, SessionProcessingStatus
from pipeline.settings import load_settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages.import_processing import process_imports, transcript_fetcher_limits

__all__ = [
    "ChunkFigures",
    "TranscriptServer",
    "flood_transcript",
    "measure_chunk",
    "normal_transcript",
    "serving",
]

_FLOOD_LINE = b"User: a\n"
_NORMAL_TURNS = (
    b"[30.04.2025 11:38:%02d] User: Hello, how many vacation days do I have left this year?\n",
    b"[30.04.2025 11:38:%02d] Assistant: You can find your leave balance in the app, under My Leave.\n",
)
_SEND_STEP = 64 * 1024
#: The measured process may not map more than this: a stage that does not bound its memory fails with a
#: MemoryError there, rather than taking the machine's memory.
_ADDRESS_SPACE_LIMIT = 4 * 1024**3


def flood_transcript(size: int) -> bytes:
    """The most turns ``size`` bytes can hold: ``User: a`` lines."""
    return _FLOOD_LINE * (size // len(_FLOOD_LINE))


def normal_transcript() -> bytes:
    """Ten timestamped turns of ordinary length."""
    return b"".join(_NORMAL_TURNS[turn % 2] % turn for turn in range(10))


class _Handler(BaseHTTPRequestHandler):
    """``/flood/<bytes>/<n>`` and ``/normal/<n>``: generated while sent, never held whole."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if parts[0] == "flood":
            size = int(parts[1]) // len(_FLOOD_LINE) * len(_FLOOD_LINE)
            self._send(size, _flood_pieces(size))
        else:
            body = normal_transcript()
            self._send(len(body), iter([body]))

    def _send(self, size: int, pieces: Iterator[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        try:
            for piece in pieces:
                self.wfile.write(piece)
        except ConnectionError:
            pass  # The fetcher gave up (a cap, a budget): nothing to finish.

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def _flood_pieces(size: int) -> Iterator[bytes]:
    step = _FLOOD_LINE * (_SEND_STEP // len(_FLOOD_LINE))
    for _ in range(size // len(step)):
        yield step
    yield _FLOOD_LINE * (size % len(step) // len(_FLOOD_LINE))


class TranscriptServer(ThreadingHTTPServer):
    """The transcript server on 127.0.0.1 and an ephemeral port."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)

    def flood_url(self, size: int, number: int) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/flood/{size}/{number}"

    def normal_url(self, number: int) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/normal/{number}"


@contextmanager
def serving() -> Iterator[TranscriptServer]:
    """A running :class:`TranscriptServer` for the duration of the block."""
    server = TranscriptServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class ChunkFigures:
    """What one measured chunk came to.

    ``peak_rss_mib`` is the measured process's peak, ``baseline_rss_mib`` its peak before the chunk (the
    interpreter, the pipeline's imports, the test data written). ``reasons`` are the distinct errors of
    TRANSCRIPT_FETCH, ``truncated`` the sessions whose messages were cut at ``TRANSCRIPT_MAX_MESSAGES``.
    """

    seconds: float
    baseline_rss_mib: float
    peak_rss_mib: float
    completed: int
    failed: int
    retrying: int
    messages: int
    truncated: int
    reasons: tuple[str, ...]


def measure_chunk(database_url: str, urls: Sequence[str], overrides: dict[str, Any]) -> ChunkFigures:
    """Process one chunk of new imports whose transcripts are at ``urls``, in a fresh process.

    ``overrides`` are settings for :func:`pipeline.settings.load_settings` (``database_url`` is set here).
    The imports belong to a new company; nothing else in the database is touched.
    """
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        figures: ChunkFigures = pool.apply(_run_chunk, (database_url, list(urls), overrides))
    return figures


def _rss_mib() -> float:
    """This process's peak resident set in MiB: VmHWM, the peak of its own address space. Not ru_maxrss,
    which Linux makes at least the peak of the process that started it (the address space ``exec``
    replaced): under a test runner that had grown to 478 MiB, baseline and peak both read 478 MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # in KiB
    raise RuntimeError("no VmHWM in /proc/self/status")


def _run_chunk(database_url: str, urls: list[str], overrides: dict[str, Any]) -> ChunkFigures:
    """The measured process: store the imports, process them as one chunk, count what came of it."""
    resource.setrlimit(resource.RLIMIT_AS, (_ADDRESS_SPACE_LIMIT, _ADDRESS_SPACE_LIMIT))
    settings = load_settings(**{**overrides, "database_url": database_url})
    engine = create_db_engine(settings)
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory.begin() as db:
        company = Company(name=f"hostile-{uuid.uuid4()}", csv_url="http://127.0.0.1:1/sessions.csv")
        db.add(company)
        db.flush()
        rows = [
            SessionImport(
                company_id=company.id,
                external_session_id=f"s{number}",
                row_hash=f"{number:064d}",
                start_time_raw="30.04.2025 11:38:14",
                end_time_raw="30.04.2025 11:48:14",
                full_transcript_url=url,
            )
            for number, url in enumerate(urls)
        ]
        db.add_all(rows)
        db.flush()
        import_ids = [row.id for row in rows]
    baseline = _rss_mib()
    started = time.perf_counter()
    with Fetcher(transcript_fetcher_limits(settings)) as fetcher:
        result = process_imports(engine, settings, import_ids, fetcher=fetcher, hand_over=lambda ids: None)
    seconds = time.perf_counter() - started
    peak = _rss_mib()
    of_company = ChatSession.company_id == company.id
    with factory() as db:
        messages = db.scalar(select(func.count()).select_from(Message).join(ChatSession).where(of_company))
        stages = db.execute(
            select(
                SessionProcessingStatus.stage,
                SessionProcessingStatus.error_message,
                SessionProcessingStatus.stage_metadata,
            )
            .join(ChatSession)
            .where(of_company)
        ).all()
    engine.dispose()
    reasons = {error for stage, error, _ in stages if stage is ProcessingStage.TRANSCRIPT_FETCH and error}
    truncated = sum(
        1
        for stage, _, metadata in stages
        if stage is ProcessingStage.SESSION_CREATION and (metadata or {}).get("truncated")
    )
    return ChunkFigures(
        seconds=seconds,
        baseline_rss_mib=baseline,
        peak_rss_mib=peak,
        completed=result.completed,
        failed=result.failed,
        retrying=result.retrying,
        messages=messages or 0,
        truncated=truncated,
        reasons=tuple(sorted(reasons)),
    )
