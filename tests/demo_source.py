"""A demo data source over real HTTP on 127.0.0.1, and companies that point at it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from pipeline.companies import add_company
from pipeline.db.secrets import PasswordBox
from pipeline.devtools.generate import generate_dataset
from pipeline.devtools.manifest import CompanyManifest, DatasetManifest
from pipeline.devtools.source import SourceServer

__all__ = ["Source", "add_source_company", "running_source"]


@dataclass
class Source:
    """A running demo source: its data set and its server."""

    directory: Path
    manifest: DatasetManifest
    server: SourceServer

    def company(self, index: int) -> CompanyManifest:
        return self.manifest.companies[index]

    def csv_url(self, index: int) -> str:
        return f"{self.server.url}/{self.company(index).slug}/sessions.csv"

    def csv_path(self, index: int) -> Path:
        return self.directory / self.company(index).slug / "sessions.csv"

    def write_csv(self, index: int, content: str | bytes) -> None:
        data = content.encode() if isinstance(content, str) else content
        self.csv_path(index).write_bytes(data)

    def transcript_path(self, index: int, external_id: str) -> Path:
        return self.directory / self.company(index).slug / "transcripts" / f"{external_id}.txt"

    def add_fault(self, path_prefix: str, fault: str, times: int | None = None) -> None:
        response = httpx.post(
            f"{self.server.url}/_control/faults",
            json={"path_prefix": path_prefix, "fault": fault, "times": times},
        )
        response.raise_for_status()

    def requests_to(self, index: int) -> int:
        stats = httpx.get(f"{self.server.url}/_control/stats").json()
        path = f"/{self.company(index).slug}/sessions.csv"
        return int(stats["paths"].get(path, 0))


@contextmanager
def running_source(
    directory: Path, *, companies: int = 2, sessions: int = 30, transcripts: bool = False
) -> Iterator[Source]:
    """A generated data set served with Basic auth for the duration of the block.

    The server starts first, so that the transcript URLs in the CSVs point at its real port.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with SourceServer(directory) as server:
        manifest = generate_dataset(
            directory,
            companies=companies,
            sessions=sessions,
            seed=7,
            transcripts=transcripts,
            base_url=server.url,
        )
        yield Source(directory, manifest, server)


def add_source_company(
    engine: Engine,
    source: Source,
    index: int,
    *,
    password: str | None = None,
    csv_url: str | None = None,
    region: str | None = None,
) -> uuid.UUID:
    """Register company ``index`` of the source in the database, with its real or a given password."""
    company = source.company(index)
    with sessionmaker(engine).begin() as db:
        added = add_company(
            db,
            name=company.name,
            csv_url=csv_url or source.csv_url(index),
            username=company.username,
            password=password or company.password,
            password_box=PasswordBox("test-secret"),
            region=region,
            timezone=company.timezone,
            # The demo source serves plain http.
            allow_http=True,
        )
        return added.id
