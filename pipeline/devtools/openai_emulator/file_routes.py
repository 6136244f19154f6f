"""``/v1/files``: upload (multipart, as the SDK sends it), retrieve, download (streamed) and delete."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from pipeline.devtools.openai_emulator.errors import ApiError
from pipeline.devtools.openai_emulator.multipart import FormField, parse_form
from pipeline.devtools.openai_emulator.web import StoreDep

__all__ = ["UPLOAD_PURPOSES", "router"]

#: Purposes a client may upload with; ``batch_output`` and the like are the API's own.
UPLOAD_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
#: The Batch API takes input files of up to 200 MB.
_MAX_BATCH_FILE_BYTES = 200 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024

router = APIRouter()


@router.post("/files")
async def upload_file(request: Request, store: StoreDep) -> JSONResponse:
    try:
        form = parse_form(request.headers.get("content-type", ""), await request.body())
    except ValueError as exc:
        raise ApiError(400, f"Could not read the upload: {exc}.") from None
    purpose, upload = form.get("purpose"), form.get("file")
    if purpose is None or purpose.text not in UPLOAD_PURPOSES:
        raise ApiError(
            400, f"'purpose' must be one of {', '.join(sorted(UPLOAD_PURPOSES))}.", param="purpose"
        )
    if upload is None or upload.filename is None:
        raise ApiError(400, "'file' must be a file upload.", param="file")
    if purpose.text == "batch" and len(upload.content) > _MAX_BATCH_FILE_BYTES:
        raise ApiError(400, "A batch input file may be at most 200 MB.", code="file_too_large", param="file")
    stored = store.add_file(upload.filename, purpose.text, upload.content, _expires_after(form))
    return JSONResponse(stored.as_json())


@router.get("/files")
def list_files(
    store: StoreDep, purpose: str | None = None, limit: int = 10_000, after: str | None = None
) -> JSONResponse:
    return JSONResponse(store.files(purpose, max(1, min(limit, 10_000)), after))


@router.get("/files/{file_id}")
def retrieve_file(file_id: str, store: StoreDep) -> JSONResponse:
    return JSONResponse(store.file(file_id).as_json())


@router.get("/files/{file_id}/content")
def file_content(file_id: str, store: StoreDep) -> StreamingResponse:
    content = store.file(file_id).content
    return StreamingResponse(_chunks(content), media_type="application/octet-stream")


@router.delete("/files/{file_id}")
def delete_file(file_id: str, store: StoreDep) -> JSONResponse:
    store.delete_file(file_id)
    return JSONResponse({"id": file_id, "object": "file", "deleted": True})


def _expires_after(form: dict[str, FormField]) -> int | None:
    """Seconds after upload the file expires, from the SDK's ``expires_after[...]`` fields, if given."""
    anchor, seconds = form.get("expires_after[anchor]"), form.get("expires_after[seconds]")
    if seconds is None:
        return None
    if anchor is not None and anchor.text != "created_at":
        raise ApiError(400, "'expires_after[anchor]' must be 'created_at'.", param="expires_after")
    try:
        return int(seconds.text)
    except ValueError:
        raise ApiError(
            400, "'expires_after[seconds]' must be a whole number.", param="expires_after"
        ) from None


def _chunks(content: bytes) -> Iterator[bytes]:
    for start in range(0, len(content), _CHUNK_BYTES):
        yield content[start : start + _CHUNK_BYTES]
