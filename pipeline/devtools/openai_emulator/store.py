"""The emulator's state: files, batches, the ledger and the chat request count, behind one lock.

Routes run on uvicorn's threads and tests read the ledger from theirs; every method takes the lock, so each is
atomic. Batches are advanced on the way in, so whatever a caller sees is up to date with the clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pipeline.devtools.openai_emulator import ids
from pipeline.devtools.openai_emulator.batch_input import parse_batch_input
from pipeline.devtools.openai_emulator.batches import BatchJob, Delivery, jsonl
from pipeline.devtools.openai_emulator.errors import ApiError
from pipeline.devtools.openai_emulator.knobs import Knobs
from pipeline.devtools.openai_emulator.ledger import LedgerEntry
from pipeline.devtools.openai_emulator.schemas import BatchCreateRequest

__all__ = ["BATCH_FILE_TTL_SECONDS", "Store", "StoredFile"]

#: Files uploaded for batches expire after 30 days unless the upload says otherwise.
BATCH_FILE_TTL_SECONDS = 30 * 24 * 60 * 60


class _Listed(Protocol):
    @property
    def id(self) -> str: ...
    def as_json(self) -> dict[str, object]: ...


def _page(newest_first: Sequence[_Listed], limit: int, after: str | None) -> dict[str, object]:
    """A page of a list answer as the API gives it: ``limit`` items after ``after`` (none if unknown)."""
    if after is not None:
        ids_in_order = [item.id for item in newest_first]
        newest_first = newest_first[ids_in_order.index(after) + 1 :] if after in ids_in_order else []
    page = [item.as_json() for item in newest_first[:limit]]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(newest_first) > limit,
    }


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int
    expires_at: int | None

    def as_json(self) -> dict[str, object]:
        """The file as ``openai.types.FileObject``; it is ready at once, so always ``processed``."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


class Store:
    """Everything the emulator remembers, and its knobs (which ``reset`` leaves alone)."""

    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}
        self._batches: dict[str, BatchJob] = {}
        self._ledger: list[LedgerEntry] = []
        self._chat_requests = 0
        self._chat_in_flight = 0

    def add_file(
        self, filename: str, purpose: str, content: bytes, expires_after: int | None = None
    ) -> StoredFile:
        now = int(time.time())
        if expires_after is None and purpose == "batch":
            expires_after = BATCH_FILE_TTL_SECONDS
        expires_at = now + expires_after if expires_after is not None else None
        stored = StoredFile(ids.file_id(), filename, purpose, content, now, expires_at)
        with self._lock:
            self._files[stored.id] = stored
        return stored

    def file(self, file_id: str) -> StoredFile:
        with self._lock:
            return self._file(file_id)

    def files(self, purpose: str | None, limit: int, after: str | None) -> dict[str, object]:
        """A page of files, newest first, of one purpose or all, starting after the file ``after``."""
        with self._lock:
            newest_first = [
                stored
                for stored in reversed(self._files.values())
                if purpose is None or stored.purpose == purpose
            ]
        return _page(newest_first, limit, after)

    def delete_file(self, file_id: str) -> None:
        with self._lock:
            self._file(file_id)
            del self._files[file_id]

    def count_chat_request(self) -> int:
        """Count one more chat completion request; its number, from 1."""
        with self._lock:
            self._chat_requests += 1
            return self._chat_requests

    def chat_started(self) -> None:
        with self._lock:
            self._chat_in_flight += 1

    def chat_ended(self) -> None:
        with self._lock:
            self._chat_in_flight -= 1

    def chat_in_flight(self) -> int:
        """Chat completions being answered now: a client killed meanwhile may be billed for one again."""
        with self._lock:
            return self._chat_in_flight

    def bill(self, entry: LedgerEntry) -> None:
        with self._lock:
            self._ledger.append(entry)

    def ledger(self) -> list[LedgerEntry]:
        with self._lock:
            self._advance_all()
            return list(self._ledger)

    def create_batch(self, request: BatchCreateRequest) -> dict[str, object]:
        with self._lock:
            source = self._files.get(request.input_file_id)
        if source is None:
            raise ApiError(
                400,
                f"The input file {request.input_file_id!r} does not exist.",
                code="invalid_file",
                param="input_file_id",
            )
        if source.purpose != "batch":
            raise ApiError(
                400,
                f"The input file {source.id!r} was uploaded with purpose {source.purpose!r}, not 'batch'.",
                code="invalid_file_purpose",
                param="input_file_id",
            )
        # Parsed outside the lock: a large file takes a while, and other requests need not wait for it.
        batch_input = parse_batch_input(source.content, request.endpoint)
        job = BatchJob(
            batch_input,
            input_file_id=source.id,
            endpoint=request.endpoint,
            completion_window=request.completion_window,
            metadata=request.metadata,
            now=time.time(),
        )
        with self._lock:
            self._batches[job.id] = job
            return job.as_json()

    def batch(self, batch_id: str) -> dict[str, object]:
        with self._lock:
            job = self._batch(batch_id)
            self._advance(job, time.time())
            return job.as_json()

    def batches(self, limit: int, after: str | None) -> dict[str, object]:
        """A page of batches, newest first, starting after the batch ``after`` (nothing if it is unknown)."""
        with self._lock:
            self._advance_all()
            # Under the lock: a batch's JSON reads its state.
            return _page(list(reversed(self._batches.values())), limit, after)

    def cancel_batch(self, batch_id: str) -> dict[str, object]:
        with self._lock:
            job = self._batch(batch_id)
            now = time.time()
            self._advance(job, now)
            job.cancel(now, self.knobs)
            return job.as_json()

    def reset(self) -> None:
        """Forget all files, batches, billed answers and the request count."""
        with self._lock:
            self._files.clear()
            self._batches.clear()
            self._ledger.clear()
            self._chat_requests = 0

    def _file(self, file_id: str) -> StoredFile:
        stored = self._files.get(file_id)
        if stored is None:
            raise ApiError(404, f"No such File object: {file_id}", param="id")
        return stored

    def _batch(self, batch_id: str) -> BatchJob:
        job = self._batches.get(batch_id)
        if job is None:
            raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
        return job

    def _advance_all(self) -> None:
        now = time.time()
        for job in self._batches.values():
            self._advance(job, now)

    def _advance(self, job: BatchJob, now: float) -> None:
        job.enqueued_elsewhere = sum(
            other.enqueued_tokens
            for other in self._batches.values()
            if other is not job and other.model == job.model and other.is_enqueued
        )
        delivery = job.advance(now, self.knobs)
        if delivery is not None:
            self._deliver(job, delivery)

    def _deliver(self, job: BatchJob, delivery: Delivery) -> None:
        now = int(time.time())
        if delivery.output:
            output = StoredFile(
                ids.file_id(), f"{job.id}_output.jsonl", "batch_output", jsonl(delivery.output), now, None
            )
            self._files[output.id] = output
            job.output_file_id = output.id
        if delivery.errors:
            failed = StoredFile(
                ids.file_id(), f"{job.id}_error.jsonl", "batch_output", jsonl(delivery.errors), now, None
            )
            self._files[failed.id] = failed
            job.error_file_id = failed.id
        self._ledger.extend(delivery.billed)
