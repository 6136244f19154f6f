"""The demo data source: a company's CSV and transcripts over HTTP, with auth, caching headers and faults."""

from __future__ import annotations

import csv
import http.client
import io
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from pipeline.devtools.generate import generate_dataset
from pipeline.devtools.manifest import CompanyManifest, DatasetManifest
from pipeline.devtools.source import SourceServer


@pytest.fixture
def source(tmp_path: Path) -> Iterator[SourceServer]:
    """A source server on a free port, started before its data set exists."""
    with SourceServer(tmp_path) as server:
        yield server


@pytest.fixture
def dataset(source: SourceServer) -> DatasetManifest:
    """A small data set whose URLs point at the running server."""
    return generate_dataset(source.directory, companies=2, sessions=5, seed=11, base_url=source.url)


@pytest.fixture
def client(source: SourceServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=source.url, timeout=10) as client:
        yield client


def credentials(company: CompanyManifest) -> tuple[str, str]:
    return company.username, company.password


def csv_path(company: CompanyManifest) -> str:
    return urlsplit(company.csv_url).path


def transcript_path(source: SourceServer, company: CompanyManifest) -> str:
    text = (source.directory / company.csv_path).read_text(encoding="utf-8")
    first_row = next(csv.reader(io.StringIO(text)))
    return urlsplit(first_row[10]).path


def raw_get(source: SourceServer, path: str, company: CompanyManifest) -> int:
    """The status of a GET sent with ``path`` exactly as written; httpx would resolve ``..`` first."""
    address = urlsplit(source.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        auth = httpx.BasicAuth(*credentials(company))
        header = next(auth.auth_flow(httpx.Request("GET", source.url))).headers["Authorization"]
        connection.request("GET", path, headers={"Authorization": header})
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_csv_needs_the_company_credentials(
    source: SourceServer, dataset: DatasetManifest, client: httpx.Client
) -> None:
    # Given a company of the data set
    company = dataset.companies[0]

    # When its CSV is fetched without credentials, with a wrong password, and with its own credentials
    anonymous = client.get(csv_path(company))
    wrong = client.get(csv_path(company), auth=(company.username, "not-the-password"))
    right = client.get(csv_path(company), auth=credentials(company))

    # Then the first two are refused with a Basic challenge
    for refused in (anonymous, wrong):
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Basic ")
    # And the last gets the file as generated, as CSV
    assert right.status_code == 200
    assert right.content == (source.directory / company.csv_path).read_bytes()
    assert right.headers["Content-Type"].startswith("text/csv")
    assert int(right.headers["Content-Length"]) == len(right.content)


def test_another_companys_credentials_are_refused(dataset: DatasetManifest, client: httpx.Client) -> None:
    # Given two companies
    first, second = dataset.companies

    # When the first company's CSV is fetched with the second company's credentials
    response = client.get(csv_path(first), auth=credentials(second))

    # Then it is refused
    assert response.status_code == 401


def test_a_transcript_is_served_at_its_csv_url_with_the_same_credentials(
    source: SourceServer, dataset: DatasetManifest, client: httpx.Client
) -> None:
    # Given the transcript URL from a company's first CSV row
    company = dataset.companies[0]
    path = transcript_path(source, company)

    # When it is fetched without and with the company's credentials
    anonymous = client.get(path)
    response = client.get(path, auth=credentials(company))

    # Then only the authenticated request gets the transcript, as text
    assert anonymous.status_code == 401
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text.startswith("[")
    assert response.content == (source.directory / path.lstrip("/")).read_bytes()


def test_unknown_paths_are_404(dataset: DatasetManifest, client: httpx.Client) -> None:
    # Given a company's credentials
    company = dataset.companies[0]
    auth = credentials(company)

    # When unknown companies, transcripts and files are requested
    statuses = [
        client.get("/no-such-company/sessions.csv", auth=auth).status_code,
        client.get(f"/{company.slug}/transcripts/no-such-session.txt", auth=auth).status_code,
        client.get(f"/{company.slug}/other.csv", auth=auth).status_code,
        client.get("/manifest.json", auth=auth).status_code,
        client.get("/", auth=auth).status_code,
    ]

    # Then each is not found; the manifest with everyone's passwords is never served
    assert statuses == [404] * 5


def test_a_transcript_that_does_not_exist_needs_credentials_before_it_is_404(
    dataset: DatasetManifest, client: httpx.Client
) -> None:
    # Given a company and a session id it does not have
    company = dataset.companies[0]
    path = f"/{company.slug}/transcripts/00000000-0000-4000-8000-000000000000.txt"

    # When it is requested without credentials
    response = client.get(path)

    # Then the answer is 401, so strangers cannot probe which sessions exist
    assert response.status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/{slug}/../manifest.json",
        "/{slug}/transcripts/../../manifest.json",
        "/{slug}/transcripts/..%2F..%2Fmanifest.json",
        "/%2e%2e/manifest.json",
        "/{slug}/transcripts/%2e%2e%2fsessions.csv",
        "//etc/passwd",
    ],
)
def test_path_traversal_is_refused(source: SourceServer, dataset: DatasetManifest, path: str) -> None:
    # Given a company's valid credentials
    company = dataset.companies[0]

    # When a path tries to leave the company's files
    status = raw_get(source, path.format(slug=company.slug), company)

    # Then nothing is served
    assert status == 404


def test_an_unchanged_file_gets_304_for_its_etag(dataset: DatasetManifest, client: httpx.Client) -> None:
    # Given a first fetch of a CSV, with its strong ETag
    company = dataset.companies[0]
    first = client.get(csv_path(company), auth=credentials(company))
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')

    # When it is fetched again with If-None-Match, and with an ETag that does not match
    again = client.get(csv_path(company), auth=credentials(company), headers={"If-None-Match": etag})
    other = client.get(csv_path(company), auth=credentials(company), headers={"If-None-Match": '"stale"'})

    # Then the matching one is 304 with no body and the same ETag, and the other gets the whole file
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    assert other.status_code == 200
    assert other.content == first.content


def test_an_unmodified_file_gets_304_for_if_modified_since(
    dataset: DatasetManifest, client: httpx.Client
) -> None:
    # Given a first fetch of a CSV, with its Last-Modified
    company = dataset.companies[0]
    first = client.get(csv_path(company), auth=credentials(company))
    last_modified = first.headers["Last-Modified"]

    # When it is fetched again with If-Modified-Since at that time, and at a time long before
    again = client.get(
        csv_path(company), auth=credentials(company), headers={"If-Modified-Since": last_modified}
    )
    older = client.get(
        csv_path(company),
        auth=credentials(company),
        headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
    )

    # Then the first is 304 and the second gets the file
    assert again.status_code == 304
    assert older.status_code == 200


def test_a_regenerated_file_gets_a_new_etag(
    source: SourceServer, dataset: DatasetManifest, client: httpx.Client
) -> None:
    # Given the ETag of a company's CSV
    company = dataset.companies[0]
    etag = client.get(csv_path(company), auth=credentials(company)).headers["ETag"]

    # When the data set is generated again with more sessions
    generate_dataset(source.directory, companies=2, sessions=6, seed=11, base_url=source.url)
    response = client.get(csv_path(company), auth=credentials(company), headers={"If-None-Match": etag})

    # Then the old ETag no longer matches and the new file is served
    assert response.status_code == 200
    assert response.headers["ETag"] != etag
    assert len(list(csv.reader(io.StringIO(response.text)))) == 6


def test_a_delay_fault_holds_the_response_back(dataset: DatasetManifest, client: httpx.Client) -> None:
    # Given a company's CSV
    company = dataset.companies[0]

    # When it is fetched with a delay fault of 0.3 s
    started = time.monotonic()
    response = client.get(csv_path(company), params={"fault": "delay:0.3"}, auth=credentials(company))
    elapsed = time.monotonic() - started

    # Then the response is normal but took at least that long
    assert response.status_code == 200
    assert elapsed >= 0.3


@pytest.mark.parametrize("code", [500, 503, 429, 401])
def test_a_status_fault_answers_with_that_status(
    dataset: DatasetManifest, client: httpx.Client, code: int
) -> None:
    # Given a company's CSV and its valid credentials
    company = dataset.companies[0]

    # When it is fetched with a status fault
    response = client.get(csv_path(company), params={"fault": f"status:{code}"}, auth=credentials(company))

    # Then that status comes back, with the headers a client would act on
    assert response.status_code == code
    if code == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
    if code in (429, 503):
        assert response.headers["Retry-After"] == "1"


def test_a_truncate_fault_sends_less_than_its_content_length(
    dataset: DatasetManifest, client: httpx.Client
) -> None:
    # Given a company's CSV
    company = dataset.companies[0]

    # When it is fetched with a truncate fault of 100 bytes, reading the body as it comes
    received = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream(
            "GET", csv_path(company), params={"fault": "truncate:100"}, auth=credentials(company)
        ) as response,
    ):
        announced = int(response.headers["Content-Length"])
        for chunk in response.iter_bytes():
            received += chunk

    # Then the headers announce the whole file, but only 100 bytes arrive before the connection closes
    assert announced > 100
    assert len(received) == 100


def test_a_reset_fault_drops_the_connection_without_a_response(
    dataset: DatasetManifest, client: httpx.Client
) -> None:
    # Given a company's CSV
    company = dataset.companies[0]

    # When it is fetched with a reset fault, then the client gets a transport error instead of a response
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        client.get(csv_path(company), params={"fault": "reset"}, auth=credentials(company))

    # And the next request is served normally
    assert client.get(csv_path(company), auth=credentials(company)).status_code == 200


def test_a_malformed_fault_is_a_bad_request(dataset: DatasetManifest, client: httpx.Client) -> None:
    company = dataset.companies[0]
    for fault in ("explode", "status:200", "delay:-1", "truncate:many"):
        response = client.get(csv_path(company), params={"fault": fault}, auth=credentials(company))
        assert response.status_code == 400, fault


def test_a_control_fault_applies_n_times_then_clears(dataset: DatasetManifest, client: httpx.Client) -> None:
    # Given a fault rule for the first company: 503 for the next two requests
    first, second = dataset.companies
    created = client.post(
        "/_control/faults", json={"path_prefix": f"/{first.slug}/", "fault": "status:503", "times": 2}
    )
    assert created.status_code == 201
    assert client.get("/_control/faults").json()["faults"] == [
        {"path_prefix": f"/{first.slug}/", "fault": "status:503", "times": 2}
    ]

    # When the first company's CSV is fetched three times, and the second company's once
    statuses = [client.get(csv_path(first), auth=credentials(first)).status_code for _ in range(3)]
    other = client.get(csv_path(second), auth=credentials(second)).status_code

    # Then the fault hits the first two matching requests only, and the rule is gone
    assert statuses == [503, 503, 200]
    assert other == 200
    assert client.get("/_control/faults").json()["faults"] == []


def test_a_control_fault_without_times_lasts_until_deleted(
    source: SourceServer, dataset: DatasetManifest, client: httpx.Client
) -> None:
    # Given a fault rule for every transcript of a company, with no count
    company = dataset.companies[0]
    path = transcript_path(source, company)
    client.post(
        "/_control/faults",
        json={"path_prefix": f"/{company.slug}/transcripts/", "fault": "status:500", "times": None},
    )

    # When the transcript is fetched a few times, the faults are deleted, and it is fetched again
    before = [client.get(path, auth=credentials(company)).status_code for _ in range(4)]
    csv_status = client.get(csv_path(company), auth=credentials(company)).status_code
    deleted = client.delete("/_control/faults")
    after = client.get(path, auth=credentials(company)).status_code

    # Then every fetch failed until the delete, the CSV was never affected, and afterwards it is served
    assert before == [500] * 4
    assert csv_status == 200
    assert deleted.status_code == 204
    assert after == 200


def test_a_control_fault_can_be_set_from_python(
    source: SourceServer, dataset: DatasetManifest, client: httpx.Client
) -> None:
    # Given a fault set through the server object, as an in-process test would
    company = dataset.companies[0]
    source.faults.add(f"/{company.slug}/", "truncate:10", times=1)

    # When the CSV is fetched twice, then the first is cut short and the second is whole
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(csv_path(company), auth=credentials(company))
    assert client.get(csv_path(company), auth=credentials(company)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"path_prefix": "/acme/", "fault": "explode"},
        {"path_prefix": "acme", "fault": "status:503"},
        {"path_prefix": "/acme/", "fault": "status:503", "times": 0},
        {"fault": "status:503"},
    ],
)
def test_a_malformed_control_request_is_a_bad_request(
    source: SourceServer, client: httpx.Client, body: dict[str, object]
) -> None:
    response = client.post("/_control/faults", json=body)
    assert response.status_code == 400
    assert source.faults.rules() == []


def test_stats_count_requests_per_path_until_reset(dataset: DatasetManifest, client: httpx.Client) -> None:
    # Given some requests: two for a CSV (one refused), one faulted, one for an unknown path
    company = dataset.companies[0]
    client.get(csv_path(company))
    client.get(csv_path(company), auth=credentials(company))
    client.get(csv_path(company), params={"fault": "status:500"})
    client.get("/nowhere")

    # When the stats are read
    stats = client.get("/_control/stats").json()

    # Then every request counts under its path, query aside, and the control API itself does not count
    assert stats == {"total": 4, "paths": {csv_path(company): 3, "/nowhere": 1}}

    # And after a reset they start from zero
    assert client.delete("/_control/stats").status_code == 204
    assert client.get("/_control/stats").json() == {"total": 0, "paths": {}}


def test_a_stopped_server_refuses_connections(tmp_path: Path) -> None:
    # Given a server that was started and stopped
    server = SourceServer(tmp_path).start()
    url = server.url
    server.stop()

    # When a request is made, then the connection is refused
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_control/stats", timeout=5)
