"""The OpenAI emulator's files: upload, retrieve, streamed download and delete, through the real SDK."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator

THIRTY_DAYS = 30 * 24 * 60 * 60


@pytest.fixture(scope="module")
def running_emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(running_emulator: OpenAIEmulator) -> Iterator[openai.OpenAI]:
    running_emulator.reset()
    running_emulator.knobs = Knobs()
    with openai.OpenAI(base_url=running_emulator.url, api_key="test", max_retries=0) as client:
        yield client


def test_an_uploaded_file_is_described_as_the_api_describes_it(client: openai.OpenAI) -> None:
    # When a batch input file is uploaded
    uploaded = client.files.create(file=("batch_requests.jsonl", b'{"a": 1}\n'), purpose="batch")

    # Then it is processed at once, and expires after the 30 days the API keeps batch files
    assert uploaded.id.startswith("file-")
    assert (uploaded.object, uploaded.status, uploaded.purpose) == ("file", "processed", "batch")
    assert (uploaded.filename, uploaded.bytes) == ("batch_requests.jsonl", 9)
    assert uploaded.expires_at == uploaded.created_at + THIRTY_DAYS

    # And retrieving it describes it the same way
    assert client.files.retrieve(uploaded.id) == uploaded


def test_an_upload_may_set_its_own_expiry(client: openai.OpenAI) -> None:
    # When a file is uploaded to expire an hour after its creation
    uploaded = client.files.create(
        file=("notes.jsonl", b"{}\n"),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )

    # Then it says so
    assert uploaded.expires_at == uploaded.created_at + 3600


def test_content_streams_back_the_exact_bytes_uploaded(client: openai.OpenAI) -> None:
    # Given a file of several chunks, with bytes that are not text and line endings of both kinds
    content = bytes(range(256)) * 1000 + b"\r\n--boundary-like\n"
    uploaded = client.files.create(file=("blob.bin", content), purpose="user_data")

    # When it is downloaded as a stream
    with client.files.with_streaming_response.content(uploaded.id) as response:
        downloaded = b"".join(response.iter_bytes())

    # Then every byte is back
    assert downloaded == content


def test_a_deleted_file_is_gone(client: openai.OpenAI) -> None:
    # Given an uploaded file
    uploaded = client.files.create(file=("notes.txt", b"hello"), purpose="user_data")

    # When it is deleted
    deleted = client.files.delete(uploaded.id)

    # Then the API confirms it, and the file can no longer be read
    assert (deleted.id, deleted.deleted) == (uploaded.id, True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(uploaded.id)


def test_an_upload_with_a_purpose_the_api_does_not_take_is_refused(client: openai.OpenAI) -> None:
    # When a file is uploaded for a purpose only the API itself uses
    # Then it is refused, naming the parameter
    with pytest.raises(openai.BadRequestError) as raised:
        client.files.create(file=("out.jsonl", b"{}\n"), purpose="batch_output")  # type: ignore[arg-type]
    assert raised.value.param == "purpose"


def test_files_are_listed_newest_first_and_by_purpose(client: openai.OpenAI) -> None:
    # Given two batch input files and one file of another purpose
    first = client.files.create(file=("a.jsonl", b"{}\n", "application/jsonl"), purpose="batch")
    client.files.create(file=("notes.txt", b"hi", "text/plain"), purpose="assistants")
    second = client.files.create(file=("b.jsonl", b"{}\n", "application/jsonl"), purpose="batch")

    # When the batch files are listed, all at once and a page of one at a time
    listed = [stored.id for stored in client.files.list(purpose="batch")]
    paged = [stored.id for stored in client.files.list(purpose="batch", limit=1)]

    # Then they come newest first, without the other purpose, and paging reaches them all
    assert listed == [second.id, first.id]
    assert paged == listed
