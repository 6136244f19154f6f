"""The manifest of a generated demo data set: its companies, their credentials and where their files are.

``manifest.json`` sits at the top of the data set directory and is written last, so its presence means the
data set is complete. Paths in it are relative to that directory, which keeps a data set movable.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

__all__ = ["MANIFEST_NAME", "CompanyManifest", "DatasetManifest", "load_manifest", "write_manifest"]

MANIFEST_NAME = "manifest.json"


class CompanyManifest(BaseModel):
    """One company of the data set, with what the pipeline needs to register it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slug: str
    name: str
    username: str
    password: str
    timezone: str
    region: str
    csv_url: str
    csv_path: str
    sessions: int


class DatasetManifest(BaseModel):
    """A whole data set: how it was generated and its companies in generation order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int
    base_url: str
    transcripts: bool
    companies: tuple[CompanyManifest, ...]

    def company(self, slug: str) -> CompanyManifest | None:
        """The company with this slug, or None."""
        return next((company for company in self.companies if company.slug == slug), None)


def load_manifest(directory: Path) -> DatasetManifest:
    """Read ``manifest.json`` from a data set directory."""
    return DatasetManifest.model_validate_json((Path(directory) / MANIFEST_NAME).read_bytes())


def write_manifest(directory: Path, manifest: DatasetManifest) -> None:
    """Write ``manifest.json`` atomically, so a reader never sees half of it."""
    target = Path(directory) / MANIFEST_NAME
    partial = target.with_name(MANIFEST_NAME + ".partial")
    partial.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(partial, target)
