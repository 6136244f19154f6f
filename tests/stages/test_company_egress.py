"""A company's egress through both fetch stages: where its credentials go, which networks its URLs may reach.

Real PostgreSQL, and real HTTP servers on two loopback addresses: the company's own on 127.0.0.2 (its CSV)
and another host on 127.0.0.3 that a row of its CSV names for the transcript.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from pipeline.companies import add_company
from pipeline.db.enums import CsvFetchOutcome
from pipeline.db.secrets import PasswordBox
from pipeline.settings import Settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.sources.private_networks import PrivateNetworks
from pipeline.stages.csv_import import CsvImportFailed, fetch_limits, import_company_csv
from pipeline.stages.import_processing import process_imports, transcript_fetcher_limits
from tests.sources.httpserver import LocalServer, respond, running_server

TRANSCRIPT = b"[30.04.2025 11:41:48] User: Hallo\n[30.04.2025 11:41:50] Assistant: Goedemiddag\n"


def csv_row(transcript_url: str) -> bytes:
    return (
        f"s-1,30.04.2025 11:41:48,30.04.2025 11:45:00,31.176.221.57,NL,dutch,1,happy,no,no,"
        f"{transcript_url},3.9,100,0.001,Greeting,Hallo\n"
    ).encode()


@pytest.fixture
def company_host() -> Iterator[LocalServer]:
    with running_server("127.0.0.2") as server:
        yield server


@pytest.fixture
def other_host() -> Iterator[LocalServer]:
    with running_server("127.0.0.3") as server:
        yield server


def add(engine: Engine, csv_url: str, **egress: Any) -> uuid.UUID:
    with sessionmaker(engine).begin() as db:
        return add_company(
            db,
            name="Acme",
            csv_url=csv_url,
            username="acme",
            password="s3cret",
            password_box=PasswordBox("test-secret"),
            allow_http=True,
            **egress,
        ).id


def import_and_process(engine: Engine, settings: Settings, company_id: uuid.UUID) -> None:
    imported: list[uuid.UUID] = []
    with Fetcher(fetch_limits(settings)) as csv_fetcher:
        import_company_csv(engine, settings, company_id, fetcher=csv_fetcher, hand_over=imported.extend)
    with Fetcher(transcript_fetcher_limits(settings)) as transcripts:
        process_imports(engine, settings, imported, fetcher=transcripts, hand_over=lambda _: None)


@pytest.mark.postgres
@pytest.mark.parametrize("listed", [False, True])
def test_the_credentials_reach_another_host_only_if_the_company_lists_it(
    pg_engine: Engine, pg_settings: Settings, company_host: LocalServer, other_host: LocalServer, listed: bool
) -> None:
    # Given a company on 127.0.0.2 whose CSV row points its transcript at 127.0.0.3
    transcript_url = other_host.route("/chats/s-1.txt", lambda h: respond(h, 200, TRANSCRIPT))
    csv_url = company_host.route("/sessions.csv", lambda h: respond(h, 200, csv_row(transcript_url)))
    # (listing 127.0.0.3 as a transcript origin, or not)
    origins = [other_host.url("")] if listed else []
    company_id = add(pg_engine, csv_url, transcript_origins=origins)

    # When its CSV is imported and the row processed
    import_and_process(pg_engine, pg_settings, company_id)

    # Then the company's own server got the credentials, and the other host only if listed
    assert company_host.paths_seen() == ["/sessions.csv"]
    assert "authorization" in company_host.requests[0].headers
    assert other_host.paths_seen() == ["/chats/s-1.txt"]
    assert ("authorization" in other_host.requests[0].headers) is listed


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("global_allow", "company", "reached"),
    [
        (False, "allow", True),
        (False, "default", False),
        (True, "deny", False),
        (True, "default", True),
    ],
)
def test_a_company_may_override_the_private_network_setting(
    pg_engine: Engine,
    pg_settings: Settings,
    company_host: LocalServer,
    global_allow: bool,
    company: PrivateNetworks,
    reached: bool,
) -> None:
    # Given a company on a loopback address, with its own private-network rule under the global one
    settings = pg_settings.model_copy(update={"csv_allow_private_networks": global_allow})
    csv_url = company_host.route("/sessions.csv", lambda h: respond(h, 200, b""))
    company_id = add(pg_engine, csv_url, private_networks=company)

    # When its CSV is imported
    with Fetcher(fetch_limits(settings)) as fetcher:
        try:
            outcome = import_company_csv(
                pg_engine, settings, company_id, fetcher=fetcher, hand_over=lambda _: None
            ).outcome
        except CsvImportFailed as exc:
            assert "loopback" in exc.reason
            outcome = CsvFetchOutcome.FAILED

    # Then the server is reached exactly when the company's rule, or else the global one, allows it
    assert (outcome is CsvFetchOutcome.IMPORTED) is reached
    assert bool(company_host.requests) is reached
